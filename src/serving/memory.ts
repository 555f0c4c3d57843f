/**
 * Giving memory back after large requests and bursts. V8 collects garbage when it allocates, never
 * while a process is idle, so a quiet server would keep the garbage of its last requests (and the
 * pages holding it) until the next burst of traffic. The front ends report each request's size; once
 * requests worth {@link LARGE_REQUEST_BYTES} have come in, one full collection runs as soon as the
 * server has been quiet for a second.
 *
 * @example
 * res.on('close', () => requestServed(body.length));
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Requests worth this many bytes (body or message) are followed by a collection; requests whose
 * input tensors hold this many run in the worker of large-requests.ts.
 */
export const LARGE_REQUEST_BYTES = 4 * 2 ** 20;

/** What a request costs at least, whatever its size (the objects and promises of one call). */
const REQUEST_COST_BYTES = 4096;

let received = 0;

let collect: (() => void) | undefined;
let timer: NodeJS.Timeout | undefined;

/** V8's gc(), made available without starting Node with --expose-gc. */
function collector(): () => void {
  if (!collect) {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as () => void;
  }
  return collect;
}

/**
 * Runs one full garbage collection `delayMs` after the last call (calls in between push it back),
 * so a burst of large requests costs one collection, after the burst.
 */
export function collectGarbageSoon(delayMs = 1000): void {
  clearTimeout(timer);
  timer = setTimeout(() => collector()(), delayMs);
  timer.unref();
}

/** Counts a finished request of `bytes`; schedules a collection once requests worth {@link LARGE_REQUEST_BYTES} came in. */
export function requestServed(bytes: number): void {
  received += Math.max(bytes, REQUEST_COST_BYTES);
  if (received < LARGE_REQUEST_BYTES) return;
  received = 0;
  collectGarbageSoon();
}
