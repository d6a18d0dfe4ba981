// Real-browser test of dtab-proxy's dtab playground (/delegator on the admin
// server), driven by playwright-core with Debian's chromium (no browser is
// downloaded). Registered with ctest by tests/browser/CMakeLists.txt:
//
//   node delegator.test.mjs DTAB_PROXY SCREENSHOT.png
//
// Starts dtab-proxy on a temporary config (two routers with static dtabs, an
// io.l5d.fs namer on a temporary directory; nothing else is needed: the
// delegator only explains), opens /delegator, picks the `outgoing` router
// and checks that /svc/world with the override /host/world => /srv/world-v2
// highlights the world-v2 branch, that without the override world-v1 is
// chosen and that an invalid override is reported. Saves a full-page
// screenshot of the override run (or of the page at a failure).
//
// Environment: CHROMIUM (default /usr/bin/chromium), BROWSER_TEST_DEBUG=1
// to echo the proxy's stderr. Exit 0 when every check passes, 1 on a failed
// check (with a message saying which), 2 on bad usage. The proxy and the
// browser are stopped and the temporary directory removed in every case,
// also on SIGINT/SIGTERM/SIGHUP and at the internal deadline (which is
// below ctest's TIMEOUT, so nothing is left running when ctest gives up).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const SETUP_HINT = 'run scripts/setup (as root) to install chromium, node and playwright-core';
const DEADLINE_MS = 100_000;  // the whole test; ctest's TIMEOUT is 120 s
const SERVING_TIMEOUT_MS = 15_000;

class CheckFailed extends Error {}

function check(cond, message) {
  if (!cond) {
    throw new CheckFailed(message);
  }
  console.log(`ok: ${message}`);
}

const [proxyBin, screenshotPath] = process.argv.slice(2);
if (!proxyBin || !screenshotPath) {
  console.error('usage: node delegator.test.mjs DTAB_PROXY SCREENSHOT.png');
  process.exit(2);
}
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

// Everything that must be undone, whatever happens.
let tmpDir = null;
let proxy = null;
let proxyExited = null;  // a promise, resolved when the proxy has exited
let browser = null;
let cleaning = null;

async function withTimeout(promise, ms) {
  let timer;
  const timeout = new Promise((resolve) => { timer = setTimeout(resolve, ms); });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function cleanup() {
  if (cleaning) {
    return cleaning;
  }
  cleaning = (async () => {
    if (browser) {
      const b = browser;
      browser = null;
      await withTimeout(b.close().catch(() => {}), 10_000);
    }
    if (proxy) {
      const p = proxy;
      proxy = null;
      if (p.exitCode === null && p.signalCode === null) {
        p.kill('SIGTERM');
        const exited = await withTimeout(proxyExited.then(() => true), 5_000);
        if (!exited) {
          p.kill('SIGKILL');
          await withTimeout(proxyExited, 5_000);
        }
      }
    }
    if (tmpDir) {
      fs.rmSync(tmpDir, { recursive: true, force: true });
      tmpDir = null;
    }
  })();
  return cleaning;
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.error(`browser_delegator_test: ${sig}, stopping`);
    cleanup().finally(() => process.exit(1));
  });
}

// The config: `ingress` and `outgoing` with static dtabs (linkerd's hello
// world), admin and servers on free ports.
function writeConfig(dir) {
  const disco = path.join(dir, 'disco');
  fs.mkdirSync(disco);
  // Nothing listens on these ports: the delegator only explains.
  fs.writeFileSync(path.join(disco, 'hello'), '127.0.0.1 7070\n');
  fs.writeFileSync(path.join(disco, 'world-v1'), '127.0.0.1 7071\n');
  fs.writeFileSync(path.join(disco, 'world-v2'), '127.0.0.1 7072\n');
  const config = path.join(dir, 'proxy.yaml');
  fs.writeFileSync(config, `admin: {ip: 127.0.0.1, port: 0}
workers: 1
namers:
  - kind: io.l5d.fs
    root_dir: disco
routers:
  - label: ingress
    dtab: "/srv => /#/io.l5d.fs; /svc/www.hello.world => /srv/hello;"
    servers:
      - {ip: 127.0.0.1, port: 0}
  - label: outgoing
    dtab: "/srv => /#/io.l5d.fs; /host => /srv; /host/world => /srv/world-v1; /svc => /host;"
    servers:
      - {ip: 127.0.0.1, port: 0}
`);
  return config;
}

// Starts dtab-proxy and resolves to its admin address (HOST:PORT) from the
// serving line.
function startProxy(config) {
  proxy = spawn(proxyBin, ['--config', config, '--drain-timeout', '1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const p = proxy;
  proxyExited = new Promise((resolve) => p.once('exit', resolve));
  let stderr = '';
  p.stderr.setEncoding('utf8');
  p.stderr.on('data', (d) => {
    stderr += d;
    if (process.env.BROWSER_TEST_DEBUG) {
      process.stderr.write(d);
    }
  });
  return new Promise((resolve, reject) => {
    let stdout = '';
    let done = false;
    const finish = (err, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) reject(err); else resolve(value);
    };
    const timer = setTimeout(() => finish(new CheckFailed(
        `dtab-proxy printed no serving line within ${SERVING_TIMEOUT_MS} ms; stderr:\n${stderr}`)),
        SERVING_TIMEOUT_MS);
    p.once('error', (e) => finish(new CheckFailed(`cannot start ${proxyBin}: ${e.message}`)));
    p.once('exit', (code, signal) => finish(new CheckFailed(
        `dtab-proxy exited (${signal || code}) before serving; stderr:\n${stderr}`)));
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (d) => {
      stdout += d;
      const nl = stdout.indexOf('\n');
      if (nl < 0) return;
      const line = stdout.slice(0, nl);
      const m = /^dtab-proxy: serving admin=(\S+)/.exec(line);
      if (!m) {
        finish(new CheckFailed(`unexpected first line from dtab-proxy: ${line}`));
        return;
      }
      console.log(line);
      finish(null, m[1]);
    });
  });
}

async function loadPlaywright() {
  try {
    return await import('playwright-core');
  } catch (e) {
    throw new CheckFailed(`cannot load playwright-core (${e.code || e.message}): ${SETUP_HINT}`);
  }
}

// What the tree shows: every leaf with its id and whether it is chosen, and
// whether every ancestor <li> of each chosen leaf is chosen too.
function readLeaves(page) {
  return page.$$eval('#tree li[data-type="leaf"]', (lis) => lis.map((li) => {
    let branchChosen = true;
    for (let a = li.parentElement; a && a.id !== 'tree'; a = a.parentElement) {
      if (a.tagName === 'LI' && !a.classList.contains('chosen')) {
        branchChosen = false;
      }
    }
    return {
      id: li.getAttribute('data-id') || '',
      path: li.getAttribute('data-path'),
      chosen: li.classList.contains('chosen'),
      branchChosen,
    };
  }));
}

// Clicks #go and waits until this run's answer is on the page: the
// delegator.json response has arrived and the previous tree (if any) is gone;
// then either a new tree or an error.
async function delegate(page, { expectError = false } = {}) {
  const previous = await page.$('#tree > ul');
  const response = page.waitForResponse((r) => new URL(r.url()).pathname.endsWith('/delegator.json'));
  await page.click('#go');
  const rsp = await response;
  if (previous) {
    await previous.waitForElementState('hidden');  // detached: the page re-rendered
  }
  if (expectError) {
    await page.waitForFunction(() => document.getElementById('error').textContent.length > 0);
  } else {
    await page.waitForSelector('#tree li[data-type]');
  }
  return rsp.status();
}

async function main() {
  const deadline = setTimeout(() => {
    console.error(`FAIL: browser_delegator_test did not finish within ${DEADLINE_MS / 1000} s`);
    cleanup().finally(() => process.exit(1));
  }, DEADLINE_MS);
  try {
    try {
      fs.accessSync(chromiumPath, fs.constants.X_OK);
    } catch {
      throw new CheckFailed(`no chromium at ${chromiumPath}: ${SETUP_HINT}`);
    }
    const { chromium } = await loadPlaywright();

    tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dtab-browser-'));
    const admin = await startProxy(writeConfig(tmpDir));

    const started = Date.now();
    browser = await chromium.launch({
      executablePath: chromiumPath,
      headless: true,
      // --no-sandbox: tests run as root (CI), where chromium refuses its sandbox.
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
      timeout: 60_000,
    });
    console.log(`chromium ${browser.version()} started in ${Date.now() - started} ms`);
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.setDefaultTimeout(15_000);
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('console', (m) => {
      // Failed loads are the browser's own messages (the expected 400 below,
      // the missing /favicon.ico); the page's scripts must log no errors.
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) {
        pageErrors.push(`console: ${m.text()}`);
      }
    });
    page.on('response', (r) => {
      if (r.status() >= 400) console.log(`(page load: ${r.status()} ${new URL(r.url()).pathname})`);
    });

    try {
      await page.goto(`http://${admin}/delegator`);
      check((await page.title()).includes('dtab playground'), 'the page is the dtab playground');
      await page.waitForFunction(() => document.querySelectorAll('#router option').length >= 2);
      const labels = await page.$$eval('#router option', (os) => os.map((o) => o.value));
      check(labels.includes('ingress') && labels.includes('outgoing'),
          `#router lists the routers (${labels.join(', ')})`);

      await page.selectOption('#router', 'outgoing');
      const base = await page.textContent('#base-dtab');
      check(base.includes('/host/world => /srv/world-v1'),
          '#base-dtab shows the outgoing router\'s dtab');

      // The override run: world-v2 is chosen.
      await page.fill('#path', '/svc/world');
      await page.fill('#override', '/host/world => /srv/world-v2');
      let status = await delegate(page);
      check(status === 200, `delegator.json answered 200 (got ${status})`);
      check((await page.textContent('#error')) === '', '#error is empty');
      check(await page.isVisible('#not-saved'), 'the #not-saved note is visible');
      check(/saved/i.test(await page.textContent('#not-saved')), 'the #not-saved note says so');
      check(await page.$eval('#tree > ul > li', (li) => li.classList.contains('chosen')),
          'the root node is chosen');
      let leaves = await readLeaves(page);
      const v2 = leaves.find((l) => l.id.endsWith('/world-v2'));
      check(v2 !== undefined,
          `the tree has a world-v2 leaf (leaves: ${JSON.stringify(leaves)})`);
      check(v2.chosen, 'the world-v2 leaf is chosen');
      check(v2.branchChosen, 'every node above the world-v2 leaf is chosen');
      const v1 = leaves.find((l) => l.id.endsWith('/world-v1'));
      check(v1 === undefined || !v1.chosen, 'the world-v1 leaf, if shown, is not chosen');
      const chosenLeaves = leaves.filter((l) => l.chosen).map((l) => l.id);
      check(chosenLeaves.length === 1, `exactly one leaf is chosen (${chosenLeaves.join(', ')})`);
      const hash = decodeURIComponent(await page.evaluate(() => location.hash));
      check(hash.includes('router=outgoing') && hash.includes('/svc/world'),
          `the URL keeps the form (${hash})`);
      await page.screenshot({ path: screenshotPath, fullPage: true });
      console.log(`screenshot: ${screenshotPath}`);

      // Without the override: world-v1, the base dtab's route.
      await page.fill('#override', '');
      status = await delegate(page);
      check(status === 200, `delegator.json answered 200 without the override (got ${status})`);
      leaves = await readLeaves(page);
      const v1Only = leaves.find((l) => l.id.endsWith('/world-v1'));
      check(v1Only !== undefined && v1Only.chosen && v1Only.branchChosen,
          `without the override the world-v1 branch is chosen (leaves: ${JSON.stringify(leaves)})`);
      check(!leaves.some((l) => l.id.endsWith('/world-v2')),
          'without the override there is no world-v2 leaf');

      // An invalid override: the error is shown and the tree cleared.
      await page.fill('#override', '/host/world => /srv/world v2');
      status = await delegate(page, { expectError: true });
      check(status === 400, `an invalid override is answered 400 (got ${status})`);
      const error = await page.textContent('#error');
      check(await page.isVisible('#error') && error.startsWith('Invalid dtab'),
          `#error shows the parser's message (${JSON.stringify(error)})`);
      check((await page.$$('#tree li')).length === 0, 'the tree is cleared on an error');

      check(pageErrors.length === 0, `no JavaScript errors on the page (${pageErrors.join('; ')})`);
    } catch (e) {
      // A picture of the page as it was at the failure.
      await page.screenshot({ path: screenshotPath, fullPage: true }).then(
          () => console.error(`screenshot of the failure: ${screenshotPath}`), () => {});
      throw e;
    }
  } finally {
    clearTimeout(deadline);
    await cleanup();
  }
}

main().then(() => {
  console.log('PASS: browser_delegator_test');
  process.exit(0);
}, (e) => {
  console.error(`FAIL: ${e instanceof CheckFailed ? e.message : (e && e.stack) || e}`);
  process.exit(1);
});
