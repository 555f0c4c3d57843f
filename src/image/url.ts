/**
 * Whether an image source is an http(s) URL rather than a path. Kept apart from the decoders so
 * that light modules (CLI option parsing, which runs on every `lens` start) can use it without
 * loading sharp and TensorFlow.js.
 *
 * @example
 * isUrl('https://example.com/cat.jpg'); // true
 * isUrl('cat.jpg');                     // false
 */
export function isUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}
