#!/usr/bin/env node
// Takes the README pictures of the dashboard: docs/screenshot-light.png and docs/screenshot-dark.png.
//
// Run:   cd tests/browser && npm install        (once)
//        TAILCAST_BIN=/path/to/tailcast node tests/browser/screenshot.mjs
//
// It starts its own server (TAILCAST_BIN) on three fresh log files in a temp dir, writes realistic,
// deterministic lines into them while the page watches (so the merged view interleaves them),
// adds two highlight rules, opens one JSON line, and shoots the same state in both themes.
// Environment: TAILCAST_BIN (required), TAILCAST_SHOTS_DIR (default: docs/ of this repository),
// TAILCAST_CHROMIUM (/usr/bin/chromium), TAILCAST_SHOT_WIDTHS (also these widths, see below). Prints "ok - screenshot PATH" per picture; exit 0 on success.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server, preflight, launchBrowser, waitFor, append, fileIds } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = process.env.TAILCAST_SHOTS_DIR || path.resolve(here, '../../docs');
const bin = process.env.TAILCAST_BIN;
if (!bin) { console.log('not ok - screenshot: set TAILCAST_BIN'); process.exit(2); }
await preflight({ chromium: process.env.TAILCAST_CHROMIUM || '/usr/bin/chromium' });

// deterministic "random"
let seed = 20261124;
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const pick = (a) => a[Math.floor(rnd() * a.length)];

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tailcast-shots-'));
const files = ['api-gateway.log', 'orders.log', 'worker.log'].map((n) => path.join(dir, n));
for (const f of files) fs.writeFileSync(f, '');
const missing = path.join(dir, 'payments.log'); // configured but not there: shows as missing

let clock = Date.UTC(2026, 10, 24, 10, 41, 52, 118);
const tick = () => { clock += Math.floor(rnd() * 900) + 40; return new Date(clock); };
const iso = (d) => d.toISOString();
const clf = (d) => `${String(d.getUTCDate()).padStart(2, '0')}/Nov/2026:${d.toISOString().slice(11, 19)} +0000`;
const ESC = '\x1b[';
const level = { INFO: `${ESC}32mINFO ${ESC}0m`, WARN: `${ESC}33mWARN ${ESC}0m`, ERROR: `${ESC}1;31mERROR${ESC}0m`, DEBUG: `${ESC}90mDEBUG${ESC}0m` };

function gateway() {
  const d = tick();
  const [m, p, st] = pick([
    ['GET', `/api/v1/orders/${84200 + Math.floor(rnd() * 90)}`, 200], ['GET', '/api/v1/catalog?page=2&size=50', 200],
    ['POST', '/api/v1/orders', 201], ['GET', '/healthz', 200], ['PUT', `/api/v1/cart/${7100 + Math.floor(rnd() * 40)}`, 200],
    ['GET', '/api/v1/catalog/sku-44817', 304], ['POST', '/api/v1/payments/authorize', 502], ['GET', '/api/v1/me', 401],
  ]);
  const ip = pick(['10.0.3.17', '10.0.3.22', '10.0.4.9', '172.18.0.5', '10.0.3.41']);
  const rt = (st >= 500 ? 5 + rnd() * 2 : rnd() * 0.09).toFixed(3);
  return `${ip} - - [${clf(d)}] "${m} ${p} HTTP/1.1" ${st} ${Math.floor(200 + rnd() * 4000)} "-" "${pick(['Mozilla/5.0 (X11; Linux x86_64)', 'okhttp/4.12.0', 'curl/8.5.0'])}" rt=${rt}`;
}
function orders() {
  const d = tick();
  const id = 84200 + Math.floor(rnd() * 90);
  const [lv, mod, msg] = pick([
    ['INFO', 'orders::api', `created order id=${id} items=${1 + Math.floor(rnd() * 5)} total=${(rnd() * 300).toFixed(2)} EUR`],
    ['INFO', 'orders::api', `order id=${id} state=paid -> state=packing`],
    ['DEBUG', 'orders::db', `pool: 7/20 connections busy, wait=0.4ms`],
    ['WARN', 'orders::stock', `sku-44817 low stock: 3 left (threshold 5)`],
    ['INFO', 'orders::events', `published order.created id=${id} partition=3 offset=${1882300 + Math.floor(rnd() * 900)}`],
    ['ERROR', 'orders::payments', `authorize id=${id} failed: upstream timeout after 5000ms (payments:8443)`],
  ]);
  return `${iso(d)} ${level[lv]} ${mod.padEnd(17)} ${msg}`;
}
function worker() {
  const d = tick();
  const id = 84200 + Math.floor(rnd() * 90);
  return JSON.stringify(pick([
    { ts: iso(d), level: 'info', job: 'send-receipt', order: id, ms: Math.floor(rnd() * 90), attempt: 1 },
    { ts: iso(d), level: 'info', job: 'reindex-catalog', batch: Math.floor(rnd() * 40), docs: 500, ms: Math.floor(rnd() * 900) },
    { ts: iso(d), level: 'warn', job: 'sync-stock', msg: 'slow upstream', ms: 2400 + Math.floor(rnd() * 900), retry_in: '5s' },
  ]));
}
const gens = [gateway, orders, worker];

const server = new Server(bin, [...files, missing]);
let browser;
try {
  const url = await server.start();
  const ids = await fileIds(url, [...files, missing]);
  browser = await launchBrowser({ chromium: process.env.TAILCAST_CHROMIUM || '/usr/bin/chromium' });
  const context = await browser.newContext({ viewport: { width: 1360, height: 820 }, deviceScaleFactor: 1, colorScheme: 'light' });
  const page = await context.newPage();
  const hash = new URLSearchParams();
  for (const id of ids.slice(0, 3)) hash.append('file', id);
  hash.append('hl', '0:/error|failed|timeout/');
  hash.append('hl', '2:low stock');
  hash.append('hl', '4:order.created');
  await page.goto(url + '#' + hash.toString());
  await waitFor(page, 'live', () => window.tailcast && window.tailcast.status === 'live', null, 10000);

  // Write lines one small batch at a time, waiting for each, so arrival order = write order.
  let written = 0;
  const weights = [0.5, 0.33, 0.17];
  const pickFile = () => { const r = rnd(); return r < weights[0] ? 0 : r < weights[0] + weights[1] ? 1 : 2; };
  const write = async (n) => {
    for (let i = 0; i < n; i++) {
      const k = pickFile();
      append(files[k], [gens[k]()]);
      written++;
      await waitFor(page, `line ${written}`, (w) => window.tailcast.received >= w, written, 5000);
    }
  };
  await write(60);
  // a truncation of the worker log shows as a notice in the stream
  fs.truncateSync(files[2], 0);
  append(files[2], [worker()]);
  written++;
  await waitFor(page, 'truncate notice', () => window.tailcast.notices().some((n) => /truncated/.test(n)), null, 8000);
  await waitFor(page, 'line after truncation', (w) => window.tailcast.received >= w, written, 5000);
  await write(12);
  // open one JSON line near the end
  const jsonRow = page.locator('#rows .row.js .tx').last();
  await jsonRow.click();
  await write(3);
  await waitFor(page, 'activity dots', () => document.querySelectorAll('#files li.busy').length >= 1, null, 3000);
  await waitFor(page, 'file sizes in the list', () => window.tailcast.files().filter((f) => f.exists).every((f) => f.size > 0), null, 8000);
  await page.mouse.move(1350, 810);

  fs.mkdirSync(outDir, { recursive: true });
  const shoot = async (scheme) => {
    await page.emulateMedia({ colorScheme: scheme });
    await waitFor(page, `${scheme} theme`, (s) => document.documentElement.dataset.effectiveTheme === s, scheme);
    await waitFor(page, 'at the bottom', () => { const l = document.getElementById('log'); return l.scrollHeight - l.scrollTop - l.clientHeight < 6; });
    const out = path.join(outDir, `screenshot-${scheme}.png`);
    await page.screenshot({ path: out });
    console.log(`ok - screenshot ${out}`);
  };
  await shoot('light');
  await shoot('dark');
  // TAILCAST_SHOT_WIDTHS=360,768,1280,2560: the same view at these widths too (light), as
  // screenshot-width-W.png, to look at the layout from a phone to a large screen.
  for (const w of (process.env.TAILCAST_SHOT_WIDTHS || '').split(',').map(Number).filter((x) => x > 0)) {
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: w, height: w < 600 ? 780 : Math.min(1200, Math.round(w * 0.6)) });
    // narrowed to a phone: the file list becomes a closed drawer
    await waitFor(page, 'the drawer closed', (x) => x > 820 || document.getElementById('sidebar').classList.contains('collapsed'), w, 3000);
    await waitFor(page, 'at the bottom', () => { const l = document.getElementById('log'); return l.scrollHeight - l.scrollTop - l.clientHeight < 6; });
    const out = path.join(outDir, `screenshot-width-${w}.png`);
    await page.screenshot({ path: out });
    console.log(`ok - screenshot ${out}`);
  }
  // TAILCAST_SHOT_SPLIT=1: a split view (the merged view and a pane on the gateway's log, with
  // the time column) at the same widths, as screenshot-split-W.png.
  if (process.env.TAILCAST_SHOT_SPLIT) {
    await page.evaluate((id) => { window.tailcast.setOption('time', 'absolute'); window.tailcast.addPane([id]); }, ids[0]);
    await waitFor(page, 'two panes', () => window.tailcast.panes().length === 2 && window.tailcast.panes()[1].lineRows > 0, null, 5000);
    await write(8);
    for (const w of (process.env.TAILCAST_SHOT_WIDTHS || '1280').split(',').map(Number).filter((x) => x > 0)) {
      await page.setViewportSize({ width: w, height: w < 600 ? 780 : Math.min(1200, Math.round(w * 0.6)) });
      await waitFor(page, 'at the bottom', () => [...document.querySelectorAll('.log')].every((l) => l.scrollHeight - l.scrollTop - l.clientHeight < 6));
      const out = path.join(outDir, `screenshot-split-${w}.png`);
      await page.screenshot({ path: out });
      console.log(`ok - screenshot ${out}`);
    }
  }
  await context.close();
} catch (e) {
  console.log(`not ok - screenshot: ${e && e.message ? e.message : e}`);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close();
  await server.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
