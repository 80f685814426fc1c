// Headless Chromium (Debian chromium, driven by playwright-core) for the browser interop tests.
import { chromium, type Browser } from 'playwright-core';
import { chromiumPath } from '../_support/peers.js';
import { withTimeout } from './_wait.js';

/** Launches Debian's Chromium headless, without sandbox, GPU or background traffic; fails after 30 s. */
export function launchChromium(): Promise<Browser> {
  return withTimeout(chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--no-first-run', '--disable-quic', '--disable-sync'],
  }), 30_000, 'Chromium to launch');
}
