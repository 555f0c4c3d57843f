/**
 * Giving memory back after large requests. V8 collects garbage when it allocates, never while a
 * process is idle, so after one large request a quiet server would keep that request's garbage (and
 * the pages holding it) until the next burst of traffic. After a request of at least
 * {@link LARGE_REQUEST_BYTES}, the server runs one full collection once it has been quiet for a moment.
 *
 * @example
 * if (body.length >= LARGE_REQUEST_BYTES) res.on('finish', () => collectGarbageSoon());
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Requests at least this large (body or message bytes) are followed by a collection. */
export const LARGE_REQUEST_BYTES = 4 * 2 ** 20;

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
