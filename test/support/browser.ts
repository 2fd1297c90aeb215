// Debian's chromium driven by playwright-core: the browser is the system's, never one downloaded at run time.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export interface Browser {
  page: Page;
  /** Saves a full-page screenshot as <dir>/<prefix>-<NN>-<name>.png, numbered in the order taken. */
  shot(name: string): Promise<string>;
  close(): Promise<void>;
}

/** A headless chromium with a fresh profile; screenshots go to `artifactsDir`, named with `prefix`. */
export async function launchBrowser(artifactsDir: string, prefix = 'shot'): Promise<Browser> {
  mkdirSync(artifactsDir, { recursive: true });
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'opsflow-chromium-'));
  const context: BrowserContext = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
    viewport: { width: 1400, height: 1000 },
    timeout: 60_000,
  });
  // Two shared cores: the UI can be slow to render, but every wait stays bounded.
  context.setDefaultTimeout(30_000);
  context.setDefaultNavigationTimeout(60_000);
  const page = context.pages()[0] ?? (await context.newPage());
  let n = 0;
  return {
    page,
    async shot(name: string) {
      const file = path.join(artifactsDir, `${prefix}-${String(++n).padStart(2, '0')}-${name}.png`);
      await page.screenshot({ path: file, fullPage: true, timeout: 30_000 }).catch(() => undefined);
      return file;
    },
    async close() {
      await context.close().catch(() => undefined);
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
