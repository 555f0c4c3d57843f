/**
 * Files written safely: atomic replacement, no writing through symbolic links, temporary files
 * removed on exit and after killed runs.
 */
export * from './atomic.js';
