/** The reasons image decoders (libvips through sharp) give, as one line. */
import { errorMessage } from '../core/errors.js';

/**
 * libvips reports a corrupt file as several lines, each decoder warning repeated once per pass
 * ("VipsJpeg: Corrupt JPEG data: ...\nVipsJpeg: Unsupported marker ...\n" two or three times):
 * one line with each distinct reason once.
 *
 * @example
 * decoderReason(new Error('Input buffer has corrupt header: VipsJpeg: premature end of JPEG image\nVipsJpeg: premature end of JPEG image'));
 * // 'Input buffer has corrupt header: premature end of JPEG image'
 */
export function decoderReason(e: unknown): string {
  let context = '';
  const reasons = new Set<string>();
  for (const line of errorMessage(e).split('\n')) {
    const at = line.search(/Vips\w+: /);
    if (at < 0) {
      if (line.trim()) reasons.add(line.trim());
      continue;
    }
    // "Input buffer has corrupt header: VipsJpeg: <reason>": keep the context once, the reason once.
    if (!context && at > 0) context = line.slice(0, at).replace(/[:\s]+$/, '');
    reasons.add(line.slice(at).replace(/^Vips\w+: /, '').trim());
  }
  const text = [...reasons].join('; ');
  return context ? `${context}: ${text}` : text;
}
