/**
 * The font used for titles, ticks and legends. @napi-rs/canvas draws no text at all when no font
 * is available, and system defaults differ between machines, so the first font file found is
 * registered under one family name and every drawing names that family: the same machine setup
 * gives the same pixels. The search order is `LENS_FONT` (a .ttf/.otf path), DejaVu Sans (Debian:
 * fonts-dejavu-core, installed by scripts/setup-system.sh; also Fedora and Arch paths), then
 * common macOS and Windows fonts.
 *
 * @example
 * ctx.font = fontSpec(12);          // '12px "LensSans"'
 */
import { existsSync } from 'node:fs';
import { GlobalFonts } from '@napi-rs/canvas';
import { LensError } from '../core/errors.js';

/** The family name the chosen font is registered under. */
export const FONT_FAMILY = 'LensSans';

const FONT_CANDIDATES = [
  '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf',
  '/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf',
  '/usr/share/fonts/dejavu/DejaVuSans.ttf',
  '/usr/share/fonts/TTF/DejaVuSans.ttf',
  '/Library/Fonts/Arial.ttf',
  '/System/Library/Fonts/Supplemental/Arial.ttf',
  'C:\\Windows\\Fonts\\arial.ttf',
];

// Bold faces next to the regular ones, registered under the same family when present.
const BOLD_SIBLINGS: ReadonlyArray<[RegExp, string]> = [
  [/DejaVuSans\.ttf$/, 'DejaVuSans-Bold.ttf'],
  [/Arial\.ttf$/, 'Arial Bold.ttf'],
  [/arial\.ttf$/, 'arialbd.ttf'],
];

let registeredPath: string | undefined;

/**
 * Registers the drawing font once and returns the file it came from. Throws when no font file
 * can be found, since text would silently be missing from every picture.
 */
export function ensureFont(): string {
  if (registeredPath) return registeredPath;
  const fromEnv = process.env.LENS_FONT;
  const candidates = fromEnv ? [fromEnv] : FONT_CANDIDATES;
  for (const path of candidates) {
    if (existsSync(path) && GlobalFonts.registerFromPath(path, FONT_FAMILY)) {
      for (const [pattern, bold] of BOLD_SIBLINGS) {
        const boldPath = path.replace(pattern, bold);
        if (boldPath !== path && existsSync(boldPath)) GlobalFonts.registerFromPath(boldPath, FONT_FAMILY);
      }
      registeredPath = path;
      return path;
    }
  }
  throw new LensError(
    'NOT_FOUND',
    fromEnv
      ? `LENS_FONT=${fromEnv} is not a readable font file`
      : 'no font for picture text: install DejaVu Sans (Debian: apt-get install fonts-dejavu-core, as scripts/setup-system.sh does) or set LENS_FONT=/path/to/font.ttf',
  );
}

/** A canvas `font` value in the drawing font. */
export function fontSpec(sizePx: number, weight: 'normal' | 'bold' = 'normal'): string {
  ensureFont();
  return `${weight === 'bold' ? 'bold ' : ''}${sizePx}px "${FONT_FAMILY}"`;
}
