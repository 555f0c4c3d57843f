/**
 * Encoded image formats by their first bytes, and the bytes to send to a signature that decodes
 * images in-graph (TensorFlow's DecodeJpeg reads JPEG, PNG and still GIF by content).
 *
 * @example
 * sniffImageFormat(await readFile('cat.jpg'));          // 'jpeg'
 * const bytes = await bytesForDecodeJpeg(await readFile('cat.bmp'), 'cat.bmp');   // PNG bytes
 */
import { isBmp } from './bmp.js';
import { decodePixels, encodePng } from './index.js';

export type ImageFormat = 'jpeg' | 'png' | 'gif' | 'bmp';

/** The format of encoded image bytes from their signature, or undefined. */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'png';
  if (bytes.length >= 4 && bytes[0] === 0x47 && bytes[1] === 0x49 && bytes[2] === 0x46 && bytes[3] === 0x38) return 'gif';
  if (isBmp(bytes)) return 'bmp';
  return undefined;
}

/**
 * What to send for an image file to a JPEG-decoding signature: the file's own bytes when
 * DecodeJpeg reads them (JPEG, PNG, GIF), so the server sees exactly the file; other formats
 * (BMP) re-encoded losslessly as PNG at full size.
 */
export async function bytesForDecodeJpeg(bytes: Uint8Array, source: string, channels: 1 | 3 = 3): Promise<Uint8Array> {
  const format = sniffImageFormat(bytes);
  if (format === 'jpeg' || format === 'png' || format === 'gif') return bytes;
  return encodePng(await decodePixels(bytes, { source, channels }));
}
