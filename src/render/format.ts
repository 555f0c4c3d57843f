/**
 * A short label for a number: 3 significant digits, exponent form for very large or small
 * magnitudes, no trailing zeros (0.5, 12.3, 1.23e-5, -0.004).
 */
export function formatNumber(value: number, digits = 3): string {
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) return '0';
  const abs = Math.abs(value);
  if (abs >= 1e5 || abs < 1e-3) return value.toExponential(digits - 1).replace(/\.?0+e/, 'e').replace('e+', 'e');
  return String(Number(value.toPrecision(digits)));
}

/**
 * A probability with 3 decimals, everywhere the same (0.997 next to 1.000, never `1`).
 *
 * @example
 * formatProbability(0.99712); // '0.997'
 */
export function formatProbability(p: number): string {
  return Number.isFinite(p) ? p.toFixed(3) : String(p);
}
