/**
 * Fault injection for crash tests: `LENS_FAULT=<point>[:<SIGNAL>][@<n>]` makes the process send
 * itself SIGNAL (default SIGKILL) the n-th time (default the first) it reaches the named point of
 * a write path, so a test can kill a writer exactly between two steps instead of guessing with
 * sleeps. Unset (always, outside tests), a fault point costs one comparison.
 *
 * @example
 * // LENS_FAULT=export:old-aside lens export default /tmp/models/shapes --version 1 --force
 * await faultPoint('export:old-aside');
 */
const spec = /^([a-z0-9:-]+)(?::(SIG[A-Z]+))?(?:@(\d+))?$/.exec(process.env.LENS_FAULT ?? '');
let reached = 0;

/** Sends the configured signal to this process when `LENS_FAULT` names `point`; otherwise returns at once. */
export async function faultPoint(point: string): Promise<void> {
  if (!spec || spec[1] !== point || ++reached !== Number(spec[3] ?? 1)) return;
  process.kill(process.pid, (spec[2] ?? 'SIGKILL') as NodeJS.Signals);
  // A handled signal (SIGINT, SIGTERM) runs its handler on the event loop: hold the writer here
  // until the handler has ended the process.
  await new Promise((resolve) => setTimeout(resolve, 60_000));
}
