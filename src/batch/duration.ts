import { LensError } from '../core/errors.js';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/**
 * Parses a duration flag such as `90s`, `30m`, `6h`, `250ms` or a bare number of seconds, to milliseconds.
 *
 * @example
 * parseDuration('30m', '--timeout'); // 1800000
 */
export function parseDuration(value: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new LensError('INVALID_ARGUMENT', `${flag} must be a duration like 90s, 30m or 6h, got "${value}"`);
  return Math.round(Number(m[1]) * UNIT_MS[(m[2] ?? 's') as keyof typeof UNIT_MS]);
}
