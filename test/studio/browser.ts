/**
 * Headless Chromium for the studio's browser tests and benchmark: Debian's `chromium` package
 * (installed by scripts/setup-system.sh) driven by playwright-core, in a fresh profile, no download.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = process.env.LENS_CHROMIUM ?? '/usr/bin/chromium';

/** Whether the browser is there; on CI its absence is an error, not a skip. */
export function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI) throw new Error(`${CHROMIUM} is missing: run scripts/setup-system.sh (Debian package chromium)`);
  process.stderr.write(`studio browser tests skipped: ${CHROMIUM} is missing (scripts/setup-system.sh installs it)\n`);
  return false;
}

/** A headless Chromium with an empty profile that accepts downloads. */
export function launchChromium(): Promise<BrowserContext> {
  return chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'lens-studio-chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    acceptDownloads: true,
    viewport: { width: 1400, height: 1000 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
