// The README's two screenshots, made from a real run rather than by hand (docs/sandbox.md#screenshots): a
// blue/green deploy of the sandbox waiting at its promote gate, as the Web UI shows it and as `opsflow watch` prints
// it. Needs `npm start` (or TEMPORAL_ADDRESS and --ui) and `opsflow sandbox up`.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { launchBrowser } from '../test/support/browser';

const ROOT = path.resolve(__dirname, '..');

/** `node bin/opsflow.js ...args`; its standard output, or an error with both outputs when it exits non-zero. */
function opsflow(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/opsflow.js'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`opsflow ${args.join(' ')} exited ${code}:\n${out}${err}`))));
  });
}

const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A terminal window around the command and its real output, for a screenshot. */
function terminalPage(command: string, output: string): string {
  return `<!doctype html><meta charset="utf-8"><style>
body { margin: 0; background: #fff; }
#term { display: inline-block; margin: 16px; padding: 16px 20px; border-radius: 8px; background: #1e1e1e; color: #d4d4d4;
  font: 14px/1.45 "DejaVu Sans Mono", monospace; white-space: pre; box-shadow: 0 2px 8px #0004; }
.prompt { color: #6a9955; }
</style><div id="term"><span class="prompt">$</span> ${escapeHtml(command)}
${escapeHtml(output.trimEnd())}</div>`;
}

async function main(): Promise<void> {
  const o = new Command('screenshots')
    .option('--run <workflowId>', 'a run already waiting at a gate (left as it is); default: start the sandbox deploy, then reject it')
    .option('--ui <url>', "the Web UI's address", 'http://127.0.0.1:8233')
    .option('--out <dir>', 'where the images go', path.join(ROOT, 'docs/img'))
    .parse()
    .opts<{ run?: string; ui: string; out: string }>();
  const id = o.run ?? (await opsflow('start', 'blueGreenDeploy', '--input', 'examples/sandbox/blueGreenDeploy.json')).match(/^started \S+ (\S+)/m)?.[1];
  if (!id) throw new Error('could not read the started run id');
  // watch returns once the run waits at its gate: that output is the picture.
  const watched = await opsflow('watch', id);
  mkdirSync(o.out, { recursive: true });
  const scratch = mkdtempSync(path.join(tmpdir(), 'opsflow-screenshots-'));
  const browser = await launchBrowser(scratch);
  try {
    const page = browser.page;
    await page.setViewportSize({ width: 1280, height: 900 });
    const runUrl = `${o.ui}/namespaces/default/workflows/${encodeURIComponent(id)}`;
    // The UI shows a run as of when the page loaded, and its parts load one after another: reload until the gate shows.
    const deadline = Date.now() + 90_000;
    for (;;) {
      await page.goto(runUrl);
      const shown = await page
        .getByTestId('user-metadata-tab')
        .click({ timeout: 15_000 })
        // The tab renders the run's summary and its current details, each in its own frame: the details are last.
        .then(() => page.locator('iframe[src*="/render"]').last().contentFrame().getByText('Waiting at gate').first().waitFor({ timeout: 15_000 }))
        .then(
          () => true,
          () => false,
        );
      if (shown) break;
      if (Date.now() > deadline) throw new Error(`the Web UI at ${runUrl} did not show the run at its gate`);
    }
    const uiShot = path.join(o.out, 'ui-gate.png');
    await page.screenshot({ path: uiShot });
    await page.setContent(terminalPage(`npx opsflow watch ${id}`, watched));
    const watchShot = path.join(o.out, 'opsflow-watch.png');
    await page.locator('#term').screenshot({ path: watchShot });
    console.log(`${uiShot}\n${watchShot}`);
  } finally {
    await browser.close();
    rmSync(scratch, { recursive: true, force: true });
    // Rejected, the deploy puts web1 back: the sandbox is as it was, ready for the next run of this script.
    if (!o.run) await opsflow('reject', id, '--reason', 'screenshots only');
  }
}

main().catch((err: unknown) => {
  console.error(`screenshots: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
