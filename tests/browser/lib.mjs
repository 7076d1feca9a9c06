// Shared helpers for the browser scripts (dashboard.mjs, screenshot.mjs).
// Owns: reading the environment, starting/stopping a tailcast server, launching Chromium,
// event-based waits with deadlines. Knows nothing about individual checks.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const CHROME_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** Environment, with defaults so a person can run the scripts by hand. */
export function config() {
  const env = process.env;
  const bin = env.TAILCAST_BIN || '';
  let files = (env.TAILCAST_FILES || '').split(',').map((s) => s.trim()).filter(Boolean);
  let tmpDir = null;
  if (files.length === 0) {
    tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tailcast-browser-'));
    files = ['access.log', 'app.log'].map((n) => path.join(tmpDir, n));
    for (const f of files) fs.writeFileSync(f, '');
  }
  return {
    url: env.TAILCAST_URL ? env.TAILCAST_URL.replace(/\/?$/, '/') : '',
    bin,
    port: env.TAILCAST_PORT ? Number(env.TAILCAST_PORT) : 0,
    files,
    tmpDir,
    chromium: env.TAILCAST_CHROMIUM || '/usr/bin/chromium',
    only: (env.TAILCAST_ONLY || '').split(',').map((s) => s.trim()).filter(Boolean),
    heapLimitMb: Number(env.TAILCAST_HEAP_LIMIT_MB || 100),
    clickLimitMs: Number(env.TAILCAST_CLICK_LIMIT_MS || 400),
    burst: Number(env.TAILCAST_BURST_LINES || 100000),
    serverArgs: (env.TAILCAST_ARGS || '').split(/\s+/).filter(Boolean),
  };
}

/** A tailcast server this script owns (so it may stop and restart it). */
export class Server {
  constructor(bin, files, { port = 0, extraArgs = [], log = null, env = {} } = {}) {
    this.bin = bin; this.files = files; this.port = port; this.extraArgs = extraArgs; this.proc = null; this.url = null;
    this.env = env;
    this.log = log; // a file path to collect the server's output, or null
  }

  async start(timeoutMs = 15000) {
    const args = ['--bind', `127.0.0.1:${this.port}`, ...this.extraArgs, ...this.files];
    let lastErr = null;
    // The port of a server just stopped can take a moment to be free again.
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      try { await this.#startOnce(args, deadline - Date.now()); return this.url; } catch (e) { lastErr = e; }
      if (!this.port) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw lastErr || new Error('server did not start');
  }

  #startOnce(args, timeoutMs) {
    return new Promise((resolve, reject) => {
      const proc = spawn(this.bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn', ...this.env } });
      let out = '';
      let settled = false;
      const logStream = this.log ? fs.createWriteStream(this.log, { flags: 'a' }) : null;
      const onData = (d) => {
        if (logStream) logStream.write(d);
        if (settled) return;
        out += d.toString();
        const m = /listening on (https?:\/\/[^\s]+)/.exec(out);
        if (m) {
          settled = true; clearTimeout(timer);
          this.proc = proc;
          this.url = m[1].replace(/\/?$/, '/');
          this.port = Number(new URL(this.url).port);
          resolve(this.url);
        }
      };
      proc.stdout.on('data', onData);
      proc.stderr.on('data', onData);
      proc.on('exit', (code, sig) => {
        if (!settled) { settled = true; clearTimeout(timer); reject(new Error(`server exited (${code ?? sig}) before listening: ${out.slice(-800)}`)); }
        if (this.proc === proc) this.proc = null;
      });
      proc.on('error', (e) => { if (!settled) { settled = true; clearTimeout(timer); reject(e); } });
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true; proc.kill('SIGKILL');
        reject(new Error(`server did not print "listening on" within ${timeoutMs} ms: ${out.slice(-800)}`));
      }, timeoutMs);
    });
  }

  /** SIGTERM, then SIGKILL if it has not exited by the deadline. */
  async stop(timeoutMs = 10000) {
    const proc = this.proc;
    if (!proc) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(t);
    this.proc = null;
  }
}

/** Exit status meaning "cannot run here" (automake's SKIP): playwright-core or Chromium missing. */
export const EXIT_SKIP = 77;

/** Check what the scripts need before doing anything; exit 77 with the reason if it is missing. */
export async function preflight(cfg) {
  if (!fs.existsSync(cfg.chromium)) {
    console.log(`skip - no Chromium at ${cfg.chromium} (apt-get install chromium, or set TAILCAST_CHROMIUM)`);
    process.exit(EXIT_SKIP);
  }
  try {
    await import('playwright-core');
  } catch {
    console.log('skip - playwright-core is not installed (cd tests/browser && npm install)');
    process.exit(EXIT_SKIP);
  }
}

export async function launchBrowser(cfg) {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: cfg.chromium, args: CHROME_ARGS, headless: true });
}

/** Wait for fn(arg) to be truthy in the page; on timeout say what and show the page's state. */
export async function waitFor(page, what, fn, arg, timeoutMs = 5000) {
  try {
    return await page.waitForFunction(fn, arg, { timeout: timeoutMs, polling: 'raf' });
  } catch (e) {
    let state = '';
    // Bounded: a frozen tab never answers page.evaluate, and a failed check must not hang the run.
    let timer;
    const frozen = new Promise((r) => { timer = setTimeout(() => r('no answer within 2 s (frozen tab?)'), 2000); });
    try { state = await Promise.race([snapshot(page).then((x) => JSON.stringify(x)), frozen]); } catch { /* page gone */ }
    clearTimeout(timer);
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; page state: ${state}`);
  }
}

export function snapshot(page) {
  return page.evaluate(() => {
    const t = window.tailcast;
    if (!t) return { hooks: 'missing' };
    return {
      status: t.status, transport: t.transport, received: t.received, trimmed: t.trimmed, rows: t.rows(),
      paused: t.paused, following: t.following, held: t.held, dropped: t.dropped, view: t.view(),
      lastTexts: t.texts().slice(-3).map((x) => x.slice(0, 120)), notices: t.notices().slice(-4),
    };
  });
}

/** Map each watched path to the id the server gave it (by path, else by command-line order). */
export async function fileIds(baseUrl, paths) {
  const r = await fetch(new URL('api/files', baseUrl));
  if (!r.ok) throw new Error(`GET api/files: HTTP ${r.status}`);
  const list = await r.json();
  return paths.map((p, i) => {
    const real = (() => { try { return fs.realpathSync(p); } catch { return p; } })();
    const hit = list.find((x) => x.path === p || x.path === real);
    return (hit || list[i]).id;
  });
}

export function append(file, lines) {
  fs.appendFileSync(file, lines.map((l) => l + '\n').join(''));
}
