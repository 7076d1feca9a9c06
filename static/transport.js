// @ts-check
/* tailcast dashboard: the connection to the server, WebSocket or (when WebSocket is refused)
 * HTTP long-poll, behind one event interface. It follows the files it is told to (follow()),
 * resumes each one from its cursor with the epoch (docs/protocol.md, "Cursors and resets"),
 * keeps the heartbeat, reconnects with backoff, falls back to long-poll and probes for WebSocket
 * again. What arrives goes out as events (lines, gap, reset, state, partial, files, epoch, ...):
 * the transport never touches the view. */

import { apiUrl, authHeaders, backoff, now, options, sleep, wsUrl } from './basics.js';
import { files, timeOf } from './store.js';

/** @typedef {import('./store.js').FileRec} FileRec */
/** @typedef {'connecting' | 'live' | 'reconnecting' | 'long-poll' | 'offline' | 'locked' | 'forbidden'} Status */
/** The events and what they carry.
 *  @typedef {{
 *    status: Status,
 *    hello: {files: any[], reconnected: boolean},
 *    epoch: {epoch: number},
 *    lines: {file: FileRec, first: number, lines: unknown[], truncated: number[] | undefined, timeAt: (seq: number) => number},
 *    gap: {file: FileRec, from: number, to: number},
 *    reset: {file: FileRec, epoch: number | null, quiet: boolean},
 *    state: {file: FileRec, state: string, message: any},
 *    partial: {file: FileRec, text: unknown},
 *    files: {files: any[]},
 *    error: {code: string, message: string},
 *    lost: {},
 *    denied: {response: Response},
 *  }} Events */

/** @typedef {WebSocket & {tcFinish?: () => void}} Socket */

export class Transport {
  /** @param {{probe: () => Promise<boolean>, denied: () => boolean}} host
   *  probe: is plain HTTP answered (GET api/files; a 401/403 there makes denied() true)? */
  constructor(host) {
    this.host = host;
    /** (on() types each handler by its event.) @type {Partial<Record<keyof Events, ((data: any) => void)[]>>} */
    this.handlers = {};
    /** @type {'ws' | 'poll' | null} */
    this.kind = null;
    /** @type {Status} */
    this.status = 'connecting';
    /** Server epoch of the cursors we hold. @type {number | null} */
    this.epoch = null;
    /** @type {string[]} the files followed */
    this.ids = [];
    /** @type {Socket | null} the live socket (after hello) */
    this.sock = null;
    this.wsReady = false;
    /** @type {Socket | null} the socket being opened, if any */
    this.connecting = null;
    this.lastHeard = 0; this.lastSent = 0;
    this.heartbeatMs = 30000; this.timeoutMs = 35000;
    this.attempt = 0;         // consecutive failed connection attempts
    this.wsRefusals = 0;      // WS failed while plain HTTP worked
    this.reconnectTimer = 0;
    this.probeTimer = 0;
    this.lostNotice = false;
    this.pollGen = 0;
    /** @type {Set<AbortController>} */
    this.pollAborts = new Set();
    // heartbeat: answer silence with our own ping; reconnect if the server is silent too long
    setInterval(() => {
      if (this.kind !== 'ws' || !this.sock || !this.wsReady) return;
      const t = now();
      if (t - this.lastHeard > this.timeoutMs) { this.dropSocket(); return; }
      if (t - this.lastSent > this.heartbeatMs / 2) this.wsSend({ type: 'ping' });
    }, 1000);
    window.addEventListener('online', () => {
      if (this.kind !== 'poll' && !this.wsReady && !host.denied()) { this.attempt = 0; this.connectWs(false); }
    });
  }

  /** @template {keyof Events} K @param {K} type @param {(data: Events[K]) => void} fn */
  on(type, fn) {
    /** @type {((data: any) => void)[]} */
    const list = this.handlers[type] || (this.handlers[type] = []);
    list.push(fn);
  }
  /** @template {keyof Events} K @param {K} type @param {Events[K]} data */
  emit(type, data) { for (const fn of this.handlers[type] || []) fn(data); }

  /** @param {Status} s */
  setStatus(s) { if (this.status !== s) { this.status = s; this.emit('status', s); } }

  start() { this.connectWs(false); }

  /** Follow these files (ids) from now on: the ones no longer followed are unsubscribed, the
   *  new ones subscribed from their cursors (or their backlog). @param {string[]} ids */
  follow(ids) {
    const old = this.ids;
    this.ids = ids.slice();
    for (const id of old) if (!ids.includes(id)) this.wsSend({ type: 'unsubscribe', file: id });
    if (this.kind === 'ws' && this.wsReady) { for (const id of ids) if (!old.includes(id)) this.subscribeWs(files.get(id)); }
    else if (this.kind === 'poll') this.startPolling();
  }

  /** Ask for a followed file again from its backlog (a view that did not show it now does; the
   *  views that had it skip the lines they hold). @param {string} id */
  refollow(id) {
    const f = files.get(id);
    if (!f || !this.ids.includes(id)) return;
    f.cursor = null; f.subscribed = false; f.baseline = null;
    if (this.kind === 'ws' && this.wsReady) this.subscribeWs(f);
    else if (this.kind === 'poll') this.startPolling();
  }

  /** Start again after an access refusal was dealt with (a token entered, a retry). */
  retry() {
    this.attempt = 0; this.wsRefusals = 0; this.kind = null;
    this.setStatus('connecting');
    this.connectWs(false);
  }
  /** Stop every attempt (the server refused access). */
  halt() {
    clearTimeout(this.reconnectTimer);
    this.stopPolling();
    if (this.sock) this.dropSocket();
  }

  // ---------------------------------------------------------------- WebSocket
  /** @param {object} msg */
  wsSend(msg) {
    const sock = this.sock;
    if (!sock || !this.wsReady || sock.readyState !== 1) return false;
    try { sock.send(JSON.stringify(msg)); this.lastSent = now(); return true; } catch { return false; }
  }

  /** @param {FileRec | undefined} f */
  subscribeWs(f) {
    if (!f) return;
    /** @type {{type: string, file: string, after?: number, backlog?: number, epoch?: number}} */
    let msg;
    // The epoch goes with the cursor: a server that numbers lines anew answers with a `reset`
    // and its backlog instead of taking our seq in its numbering.
    if (f.cursor != null) msg = { type: 'subscribe', file: f.id, after: f.cursor };
    else if (f.subscribed && f.baseline != null) msg = { type: 'subscribe', file: f.id, after: Math.max(0, f.baseline - options.backlog) };
    else { msg = { type: 'subscribe', file: f.id, backlog: options.backlog }; f.baseline = f.last_seq || 0; }
    if (msg.after != null && this.epoch != null) { msg.epoch = this.epoch; msg.backlog = options.backlog; }
    f.subscribed = true;
    this.wsSend(msg);
  }

  /** Open a socket. A probe (from long-poll mode) only takes over if it gets a hello. @param {boolean} probe */
  connectWs(probe) {
    if (this.connecting) return;
    if (!probe) clearTimeout(this.reconnectTimer);
    /** @type {Socket} */
    let ws;
    try { ws = new WebSocket(wsUrl()); } catch { if (!probe) this.onWsFailed(false); return; }
    this.connecting = ws;
    let hello = false, done = false;
    const handshake = setTimeout(() => { if (!hello) finish(); }, 10000);
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(handshake);
      if (this.connecting === ws) this.connecting = null;
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(); } catch { /* already closed */ }
      if (this.sock === ws) { this.sock = null; this.wsReady = false; }
      if (!probe || hello) this.onWsFailed(hello);
    };
    ws.tcFinish = finish;
    ws.onerror = () => {};
    ws.onclose = finish;
    ws.onmessage = (ev) => {
      this.lastHeard = now();
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      if (!hello) {
        if (m.type !== 'hello') return;
        hello = true;
        clearTimeout(handshake);
        if (this.connecting === ws) this.connecting = null;
        if (probe) this.stopPolling();
        this.sock = ws; this.wsReady = true; this.kind = 'ws'; this.attempt = 0; this.wsRefusals = 0;
        clearInterval(this.probeTimer); this.probeTimer = 0;
        this.onHello(m);
        return;
      }
      this.onWsMessage(m);
    };
  }

  /** @param {any} m */
  onHello(m) {
    this.heartbeatMs = m.heartbeat_ms > 0 ? m.heartbeat_ms : 30000;
    this.timeoutMs = m.timeout_ms > 0 ? m.timeout_ms : this.heartbeatMs + 5000;
    this.lastSent = now();
    this.setStatus('live');
    const had = this.ids.length > 0;
    const reconnected = this.lostNotice && this.epoch === m.epoch;
    this.lostNotice = false;
    this.newEpoch(m.epoch);
    // The view may follow() files from here (the first hello): those are subscribed then.
    this.emit('hello', { files: Array.isArray(m.files) ? m.files : [], reconnected });
    if (had) for (const id of this.ids) this.subscribeWs(files.get(id));
  }

  /** The server's numbering: the view hears of a change before the epoch is taken. @param {number} epoch */
  newEpoch(epoch) {
    if (epoch == null) return;
    if (this.epoch != null && epoch !== this.epoch) this.emit('epoch', { epoch });
    this.epoch = epoch;
  }

  /** @param {any} m */
  onWsMessage(m) {
    const f = m.file != null ? files.get(m.file) : undefined;
    const followed = !!f && this.ids.includes(f.id);
    switch (m.type) {
      case 'lines':
        if (f && followed && Array.isArray(m.lines)) this.emit('lines', { file: f, first: m.seq, lines: m.lines, truncated: m.truncated, timeAt: timeOf(m.time, m.times) });
        break;
      case 'gap':
        if (f && followed) this.emit('gap', { file: f, from: m.from, to: m.to });
        break;
      case 'reset':
        if (f) {
          if (m.epoch != null) this.newEpoch(m.epoch);
          this.emit('reset', { file: f, epoch: m.epoch, quiet: false });
        }
        break;
      case 'file':
        if (f) this.emit('state', { file: f, state: m.state, message: m });
        break;
      case 'files':
        // A live glob or directory found a file.
        if (Array.isArray(m.files)) this.emit('files', { files: m.files });
        break;
      case 'partial':
        if (f) this.emit('partial', { file: f, text: m.text });
        break;
      case 'ping':
        this.wsSend({ type: 'pong' });
        break;
      case 'error':
        this.emit('error', { code: m.code || 'error', message: m.message || '' });
        break;
      case 'hello':
        this.onHello(m);
        break;
      default:
        break;
    }
  }

  /** A socket ended (hadHello: it had been live) or never came up. @param {boolean} hadHello */
  async onWsFailed(hadHello) {
    if (this.kind === 'poll' || this.host.denied()) return;
    this.wsReady = false;
    if (hadHello) {
      this.attempt = 1;
      this.setStatus('reconnecting');
      this.emit('lost', {});
      this.lostNotice = true;
      this.reconnectTimer = window.setTimeout(() => this.connectWs(false), backoff(this.attempt));
      return;
    }
    this.attempt++;
    // Is the server there at all? If plain HTTP works, WebSocket itself is refused.
    const httpOk = await this.host.probe();
    if (this.host.denied()) return; // a token is needed or the address is refused: the access screen says so
    if (httpOk) {
      this.wsRefusals++;
      if (this.wsRefusals >= 2) { this.startPollMode(); return; }
      this.reconnectTimer = window.setTimeout(() => this.connectWs(false), 300);
      return;
    }
    this.wsRefusals = 0;
    this.setStatus(this.attempt >= 3 ? 'offline' : 'reconnecting');
    this.reconnectTimer = window.setTimeout(() => this.connectWs(false), backoff(this.attempt));
  }

  /** Cut the live socket (as a lost connection would). @returns {boolean} whether there was one */
  dropSocket() {
    const had = !!this.sock;
    if (this.sock && this.sock.tcFinish) this.sock.tcFinish();
    return had;
  }

  // ---------------------------------------------------------------- long-poll
  startPollMode() {
    this.kind = 'poll';
    this.sock = null; this.wsReady = false;
    this.setStatus('long-poll');
    this.startPolling();
    clearInterval(this.probeTimer);
    this.probeTimer = window.setInterval(() => { if (this.kind === 'poll' && !document.hidden) this.connectWs(true); }, 30000);
  }
  stopPolling() {
    this.pollGen++;
    for (const ac of this.pollAborts) ac.abort();
    this.pollAborts.clear();
  }
  startPolling() {
    this.stopPolling();
    const gen = this.pollGen;
    // One held request for every file followed (the server answers once for all).
    const fs = /** @type {FileRec[]} */ (this.ids.map((id) => files.get(id)).filter(Boolean));
    if (fs.length) this.pollLoop(fs, gen);
  }

  /** Where to resume a file: the seq of its last line, or none (its backlog). @param {FileRec} f */
  resumeSeq(f) {
    if (f.cursor != null) return f.cursor;
    if (f.subscribed && f.baseline != null) return Math.max(0, f.baseline - options.backlog);
    return null;
  }

  /** The poll URL for the files `fs`: one file's cursor `EPOCH-SEQ`, several files' combined
   *  `EPOCH-ID:SEQ,ID:SEQ` (ids with `%` and `,` escaped); files without a cursor get the backlog.
   *  @param {FileRec[]} fs @param {number} wait */
  pollUrl(fs, wait) {
    /** @type {Record<string, string | number>} */
    const params = { backlog: options.backlog };
    const seqs = fs.map((f) => this.resumeSeq(f));
    const epoch = this.epoch;
    for (let i = 0; i < fs.length; i++) if (seqs[i] == null) fs[i].baseline = fs[i].last_seq || 0;
    if (fs.length === 1 && seqs[0] != null) {
      // Qualified with the epoch, so a restarted server answers `reset` instead of using our seq.
      params.after = epoch != null ? `${epoch}-${seqs[0]}` : String(seqs[0]);
    } else if (fs.length > 1 && epoch != null && seqs.some((s) => s != null)) {
      const esc = (/** @type {string} */ id) => id.replace(/%/g, '%25').replace(/,/g, '%2C');
      params.after = `${epoch}-` + fs.map((f, i) => (seqs[i] == null ? null : `${esc(f.id)}:${seqs[i]}`)).filter(Boolean).join(',');
    }
    if (params.after != null) params.timeout = wait;
    const u = new URL(apiUrl('poll', params));
    for (const f of fs) u.searchParams.append('file', f.id);
    return { url: u.toString(), resuming: params.after != null, held: params.after != null && wait > 0 && seqs.every((s) => s != null) };
  }

  /** @param {FileRec[]} fs @param {number} gen */
  async pollLoop(fs, gen) {
    let fails = 0;
    while (gen === this.pollGen && this.kind === 'poll') {
      // After a failure the first request must not be held: it tells at once whether the server
      // is back, and its epoch whether it restarted.
      const { url, resuming, held } = this.pollUrl(fs, fails > 0 ? 0 : 25);
      const sentEpoch = this.epoch;
      const ac = new AbortController();
      this.pollAborts.add(ac);
      const timer = setTimeout(() => ac.abort(), 40000);
      const sentAt = now();
      try {
        const r = await fetch(url, { signal: ac.signal, cache: 'no-store', headers: authHeaders() });
        if (r.status === 401 || r.status === 403) { if (gen === this.pollGen) { this.stopPolling(); this.emit('denied', { response: r }); } return; }
        if (!r.ok) throw new Error('HTTP ' + r.status);
        const top = await r.json();
        if (gen !== this.pollGen) return;
        fails = 0;
        this.setStatus('long-poll');
        for (const f of fs) f.subscribed = true;
        if (top.epoch != null && sentEpoch != null && top.epoch !== sentEpoch) {
          // The server restarted: our cursors meant nothing to it.
          if (this.epoch === sentEpoch) this.newEpoch(top.epoch); else for (const f of fs) { f.cursor = null; f.subscribed = false; }
          if (resuming) continue;   // the next request asks for a backlog
        }
        if (top.epoch != null) this.epoch = top.epoch;
        let gotLines = false;
        for (const j of Array.isArray(top.files) ? top.files : [top]) {
          const f = files.get(j.file);
          if (!f || !fs.includes(f)) continue;
          if (j.reset) this.emit('reset', { file: f, epoch: null, quiet: true });
          if (j.gap) this.emit('gap', { file: f, from: j.gap.from, to: j.gap.to });
          if (Array.isArray(j.lines) && j.lines.length && j.first_seq != null) {
            gotLines = true;
            this.emit('lines', { file: f, first: j.first_seq, lines: j.lines, truncated: j.truncated, timeAt: timeOf(null, j.times) });
          }
          // Past the lines a server-side filter dropped too: the cursor is the answer's.
          if (j.last_seq != null && (f.cursor == null || j.last_seq > f.cursor)) f.cursor = j.last_seq;
        }
        // An empty answer to a held request that came back at once (a server shutting down, a
        // proxy cutting it short): do not spin.
        if (held && !gotLines && now() - sentAt < 500) await sleep(1000);
      } catch {
        if (gen !== this.pollGen) return;
        fails++;
        this.setStatus(fails >= 3 ? 'offline' : 'reconnecting');
        await sleep(backoff(fails));
        if (gen !== this.pollGen) return;
        if (fails >= 2) this.connectWs(true); // the server may be back, perhaps with WebSocket
      } finally {
        clearTimeout(timer);
        this.pollAborts.delete(ac);
      }
    }
  }
}
