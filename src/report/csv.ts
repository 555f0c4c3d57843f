/**
 * One CSV field (RFC 4180): quoted when it holds a quote, comma or line break; empty for a
 * missing value.
 *
 * @example
 * csvField('a "b", c'); // '"a ""b"", c"'
 */
export function csvField(v: string | number | boolean | null | undefined): string {
  if (v === null || v === undefined) return '';
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
