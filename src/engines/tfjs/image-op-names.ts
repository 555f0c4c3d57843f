/**
 * The TensorFlow image decoding ops serving-lens runs (image-ops.ts), named apart from their
 * kernels so that a loader can tell whether a graph needs them without loading the image codecs.
 *
 * @example
 * IMAGE_OPS.includes('DecodeJpeg'); // true
 */
export const IMAGE_OPS = ['DecodeJpeg', 'DecodePng', 'DecodeBmp', 'DecodeGif', 'DecodeImage'] as const;
