/* tailcast dashboard: follows log files over WebSocket (or HTTP long-poll) and shows them.
 *
 * Plain script, no framework, no build step, no external resources; it runs under the server's
 * CSP (default-src 'self'; script-src 'self'; style-src 'self'): no inline code, no eval, no
 * style attributes in markup. Log lines are TEXT: they only ever reach the DOM through
 * textContent / createTextNode, never innerHTML.
 *
 * What it owns: the wire protocol client (docs: /work/shared/DESIGN.md, "Wire protocol,
 * version 1"), the bounded line store, rendering, filter/highlight (user regexes run in
 * regex-worker.js, under a time budget), the URL hash, the UI.
 * What it does not: anything on the server. All URLs are relative (api/files, ws, poll) so the
 * page works under a reverse-proxy path prefix. The token (--token): see "basics" and "access".
 *
 * Stable element ids (tests and docs rely on them):
 *   #files           file list (li.file[data-id], with input.pick checkbox, .dot activity, .meta)
 *   #view-all        merge every file into one view
 *   #view-title      what is being shown
 *   #filter          filter input;  #filter-regex  #filter-case  #filter-invert  toggles (aria-pressed)
 *   #filter-error    invalid or too-slow regex message
 *   #hl-btn #hl-panel #hl-input #hl-colors #hl-add #hl-list   highlight rules
 *   #pause           pause/resume (aria-pressed);  #banner #banner-text #banner-resume  paused notice
 *   #jump            "N new lines, jump to end" button (shown when not following)
 *   #wrap #copy #download #theme #settings-btn #settings #help-btn #help
 *   #opt-rows #opt-keep #opt-backlog #opt-seq #opt-time #opt-theme   settings
 *   #status          status pill, data-state = connecting | live | reconnecting | long-poll | offline
 *                    | locked (401: a token is needed or was refused) | forbidden (403: Host/Origin)
 *   #access          shown on a 401/403: #access-title #access-text #access-fix #access-error, #access-form
 *                    (#access-token) for a token, #access-retry; data-kind = token | forbidden
 *   #count-received #count-rows #count-cap #count-trimmed   counters
 *   #log             scroll container;  #rows > div.chunk (up to 64 rows each) > div.row: a line
 *                    (span.ts read time when the time column is on, span.ln seq, span.fl file label
 *                    in merged view, span.tx text, span.cut if
 *                    truncated) or div.row.note.note-{gap,file,restart,drop,error,conn} (a notice)
 *   #toast           transient messages
 *
 * URL hash (kept in sync, so a link reproduces the view):
 *   #file=ID[&file=ID2...]&q=TEXT&re=1&case=1&inv=1&hl=C:PATTERN[&hl=...]&wrap=0
 *   (C = colour 0..5; PATTERN in slashes is a regex; several file= is the merged view)
 *
 * Test hooks: window.tailcast (see the bottom of this file):
 *   received, trimmed, dropped, held, duplicates, missing, status, transport, paused, following, denied,
 *   epoch, rows(), lineRows(), texts(), timeCells(), notices(), lines(id), seqs(id), times(id), view(),
 *   files(), options,
 *   setView(ids), setFilter({q,regex,caseSensitive,invert}), addHighlight(p,c), clearHighlights(),
 *   setOption(k,v), pause(), resume(), jumpToEnd(), debugDropSocket(), cspViolations, errors.
 */
'use strict';

(() => {
  // ---------------------------------------------------------------- basics
  const $ = (id) => document.getElementById(id);
  // The token (a server started with --token) is kept for this tab only (sessionStorage) and never
  // left in the page URL: a ?token= the page was opened with moves there and leaves the address
  // bar. HTTP requests carry it as `Authorization: Bearer`; the WebSocket, which cannot send
  // headers from a browser, as ?token= on the ws URL (what /ws accepts, docs/protocol.md).
  const TOKEN_KEY = 'tailcast.token';
  let TOKEN = (() => { try { return sessionStorage.getItem(TOKEN_KEY); } catch { return null; } })();
  (() => {
    const u = new URL(location.href);
    if (!u.searchParams.has('token')) return;
    setToken(u.searchParams.get('token'));
    u.searchParams.delete('token');
    history.replaceState(history.state, '', u.pathname + u.search + u.hash);
  })();
  function setToken(t) {
    TOKEN = t || null;
    try { if (TOKEN) sessionStorage.setItem(TOKEN_KEY, TOKEN); else sessionStorage.removeItem(TOKEN_KEY); } catch { /* private mode */ }
  }
  /** Headers of every data request: the token, if there is one. */
  const authHeaders = () => (TOKEN ? { Authorization: 'Bearer ' + TOKEN } : {});

  /** A URL relative to the page (so it works under a reverse-proxy path prefix). */
  function apiUrl(rel, params) {
    const u = new URL(rel, location.href);
    u.hash = '';
    u.search = '';
    if (params) for (const [k, v] of Object.entries(params)) if (v != null) u.searchParams.set(k, String(v));
    return u.toString();
  }
  function wsUrl() {
    const u = new URL(apiUrl('ws'));
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    if (TOKEN) u.searchParams.set('token', TOKEN);
    return u.toString();
  }
  const now = () => performance.now();
  const fmt = (n) => n.toLocaleString('en-US');
  function fmtBytes(n) {
    if (n == null) return '';
    if (n < 1024) return n + ' B';
    const u = ['KiB', 'MiB', 'GiB', 'TiB'];
    let i = -1;
    do { n /= 1024; i++; } while (n >= 1024 && i < u.length - 1);
    return (n < 10 ? n.toFixed(1) : Math.round(n)) + ' ' + u[i];
  }

  const pad = (n, w = 2) => String(n).padStart(w, '0');
  /** A read time as the clock on this machine shows it, to the millisecond. */
  function fmtClock(t) {
    const d = new Date(t);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }
  /** How long ago a read time was, short enough for a narrow column. */
  function fmtAgo(t) {
    const s = Math.max(0, Math.floor((Date.now() - t) / 1000));
    if (s < 1) return 'now';
    if (s < 60) return s + 's ago';
    if (s < 3600) return Math.floor(s / 60) + 'm ago';
    if (s < 172800) return Math.floor(s / 3600) + 'h ago';
    return Math.floor(s / 86400) + 'd ago';
  }
  /** The full local date and time, for a time cell's title. */
  function fmtFull(t) {
    const d = new Date(t);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${fmtClock(t)} (read by the server)`;
  }
  /** seq -> read time of a lines message: `times` ([[SEQ, MS], ...], the time of the lines from
   *  SEQ on) when the lines span several reads, else `time`; a server without times: now. */
  function timeOf(time, times) {
    if (Array.isArray(times) && times.length) {
      return (seq) => {
        let lo = 0, hi = times.length - 1;
        while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (times[mid][0] <= seq) lo = mid; else hi = mid - 1; }
        return Number(times[lo][1]) || Date.now();
      };
    }
    const t = typeof time === 'number' && time > 0 ? time : Date.now();
    return () => t;
  }

  const hooks = { cspViolations: [], errors: [] };
  document.addEventListener('securitypolicyviolation', (e) => {
    hooks.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
  });
  window.addEventListener('error', (e) => hooks.errors.push(String(e.message)));

  // ---------------------------------------------------------------- options
  const DEFAULTS = { maxRows: 5000, keep: 20000, backlog: 1000, seq: true, time: 'off', theme: 'system' };
  const TIME_MODES = ['off', 'relative', 'absolute'];
  const options = Object.assign({}, DEFAULTS, (() => {
    try { return JSON.parse(localStorage.getItem('tailcast.options') || '{}'); } catch { return {}; }
  })());
  // The numeric settings and their bounds. A value typed in the settings is stored as entered or
  // refused with a message (#opt-error), never silently replaced; "1 000" and "1,000" are 1000.
  const LIMITS = {
    maxRows: { lo: 100, hi: 100000, label: 'Rows on screen' },
    keep: { lo: 1000, hi: 500000, label: 'Lines kept in memory' },
    backlog: { lo: 0, hi: 10000, label: 'Backlog lines' },
  };
  /** A whole number as typed, with thousands separators (spaces, commas, _ or ') allowed; else NaN. */
  function parseCount(v) {
    if (typeof v === 'number') return Number.isInteger(v) ? v : NaN;
    const t = String(v == null ? '' : v).trim().replace(/[\s\u00a0\u202f,_']/g, '');
    return /^[0-9]{1,9}$/.test(t) ? Number(t) : NaN;
  }
  function clampOptions() {
    const int = (v, lo, hi, d) => { v = parseCount(v); return Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : d; };
    options.maxRows = int(options.maxRows, 100, 100000, DEFAULTS.maxRows);
    options.keep = Math.max(int(options.keep, 1000, 500000, DEFAULTS.keep), options.maxRows);
    options.backlog = int(options.backlog, 0, 10000, DEFAULTS.backlog);
    options.seq = options.seq !== false;
    if (!['system', 'light', 'dark'].includes(options.theme)) options.theme = 'system';
    if (!TIME_MODES.includes(options.time)) options.time = 'off';
  }
  clampOptions();
  function saveOptions() {
    try { localStorage.setItem('tailcast.options', JSON.stringify(options)); } catch { /* private mode */ }
  }

  // ---------------------------------------------------------------- state
  /** id -> {id, path, exists, size, last_seq, cursor, baseline, subscribed, color, activity, el} */
  const files = new Map();
  let fileOrder = [];
  let viewIds = [];               // files shown (one, or several merged)
  let epoch = null;               // server epoch of the cursors we hold
  let status = 'connecting';
  let transport = null;           // 'ws' | 'poll' | null

  const stats = { received: 0, trimmed: 0, dropped: 0, duplicates: 0, missing: 0 };

  // ---------------------------------------------------------------- the line store
  /** Fixed-capacity ring of entries; entries carry a global, gap-free arrival number n. */
  class Ring {
    constructor(cap) { this.cap = cap; this.buf = new Array(cap); this.start = 0; this.len = 0; }
    push(x) {
      if (this.len < this.cap) { this.buf[(this.start + this.len) % this.cap] = x; this.len++; return null; }
      const old = this.buf[this.start];
      this.buf[this.start] = x;
      this.start = (this.start + 1) % this.cap;
      return old;
    }
    at(i) { return this.buf[(this.start + i) % this.cap]; }
    clear() { this.buf = new Array(this.cap); this.start = 0; this.len = 0; }
  }
  // entry: {n, f (file id), seq, t (read time, unix ms), text (ANSI stripped), segs (null | [{t, c}]), trunc,
  //         kind (null | notice kind)}
  let store = new Ring(options.keep);
  let nextN = 1;        // n of the next entry
  let ingestedN = 0;    // every entry with n <= ingestedN has been queued for (or filtered out of) the DOM
  let pending = [];     // entries queued for the DOM, oldest first
  let pendingHead = 0;
  let heldCount = 0;    // matching entries waiting because we are paused / not following
  let paused = false;
  let following = true;
  let dropNoticeDue = 0; // dropped while held, to announce in the stream on resume

  const held = () => paused || !following;

  function pushEntry(e) {
    e.n = nextN++;
    const old = store.push(e);
    if (old && old.n > ingestedN) {
      // Never reached the DOM. While held that is the pause buffer overflowing; otherwise the
      // row would have been trimmed at once anyway.
      if (held()) {
        // A line the worker has not judged yet counts as lost too: it was not shown.
        const known = old.n <= judgedThrough();
        if (!known || matches(old)) { stats.dropped++; dropNoticeDue++; if (known) heldCount = Math.max(0, heldCount - 1); }
      } else if (!old.kind) stats.trimmed++;
      if (ingestedN < old.n) ingestedN = old.n;
    }
    if (matcher.work.length) pumpSoon(); // judged later: see "user regexes in a Worker"
    else if (held() && matches(e)) heldCount++;
    schedule();
  }

  // ---------------------------------------------------------------- merged views: by read time
  // A merged view shows its files' lines in the order the server read them (each lines message
  // says when: docs/protocol.md), backlogs included: the backlogs of two files arrive one after
  // the other, and must not show as two blocks. Lines of a merged view wait STAGE_MS in
  // `staged`, so that what arrives together (the backlogs, one long-poll answer, live lines of
  // several files) is sorted before it is stored, which is the cheap case. A line older than the
  // newest stored one (a file's backlog arriving later: a file added to the view, a reconnect)
  // is put in its place in the store and the view redrawn (insertLate), at most every LATE_MS.
  // One view shows one file's lines in the order they came: nothing waits.
  const STAGE_MS = 40, LATE_MS = 250;
  let lastT = 0;          // newest read time seen: the time of a notice that is about no file
  let staged = [];        // merged view: entries waiting to be sorted in, in arrival order
  let stageTimer = 0;
  let late = [];          // merged view: entries older than the newest stored one
  let lateTimer = 0, lastLate = -Infinity;

  function addEntry(e) {
    if (!merged) { pushEntry(e); return; }
    staged.push(e);
    if (!stageTimer) stageTimer = setTimeout(flushStaged, STAGE_MS);
  }
  /** Sort what waits into the store (now: a view change or a test hook needs it there). */
  function flushStaged() {
    clearTimeout(stageTimer); stageTimer = 0;
    if (staged.length) {
      const list = staged;
      staged = [];
      list.sort((a, b) => a.t - b.t); // stable: one file's lines, and equal times, keep their order
      const newest = store.len ? store.at(store.len - 1).t : -Infinity;
      for (const e of list) { if (e.t < newest) late.push(e); else pushEntry(e); }
    }
    if (late.length && !lateTimer) lateTimer = setTimeout(flushLate, Math.max(0, lastLate + LATE_MS - now()));
  }
  function flushLate() {
    clearTimeout(lateTimer); lateTimer = 0;
    if (!late.length) return;
    lastLate = now();
    const list = late;
    late = [];
    insertLate(list);
  }
  /** Put entries (sorted by time) in their places among the stored ones, number the store
   *  again, and redraw: lines before the last one shown are shown, the others wait as before. */
  function insertLate(list) {
    const old = [];
    for (let i = 0; i < store.len; i++) old.push(store.at(i));
    const sync = !matcher.work.length; // counters can follow only if matching needs no worker
    const decided = (e, limit) => e.n <= limit && !e.kind && matches(e);
    const before = sync ? old.reduce((k, e) => k + (decided(e, ingestedN) ? 1 : 0), 0) : 0;
    const domBefore = domLines;
    const all = [];
    let a = 0, b = 0, shownUpTo = -1;
    while (a < old.length || b < list.length) {
      if (b >= list.length || (a < old.length && old[a].t <= list[b].t)) {
        const e = old[a++];
        if (e.n <= ingestedN) shownUpTo = all.length;
        all.push(e);
      } else all.push(list[b++]);
    }
    const from = Math.max(0, all.length - options.keep);
    let evicted = 0;
    for (let i = 0; i < from; i++) if (!all[i].kind && (!sync || matches(all[i]))) evicted++;
    store = new Ring(options.keep);
    nextN = 1;
    for (let i = from; i < all.length; i++) { all[i].n = nextN++; store.push(all[i]); }
    const limit = shownUpTo >= from ? all[shownUpTo].n : 0;
    ingestedN = held() ? limit : nextN - 1;
    const after = sync ? all.slice(from).reduce((k, e) => k + (decided(e, ingestedN) ? 1 : 0), 0) : 0;
    rebuild();
    // Every line decided (shown or passed over) is on screen or counted trimmed.
    if (sync && !rebuildDue) stats.trimmed = Math.max(0, stats.trimmed + evicted + (after - before) - (domLines - domBefore));
    updateUi(true);
  }
  /** Drop what waits for a merged view (a view change, a numbering that is gone). */
  function unstage(keep) {
    staged = staged.filter(keep);
    late = late.filter(keep);
  }

  // ---------------------------------------------------------------- ANSI
  const CSI = /\x1b\[([0-9;:?]*)([@-~])/g;
  /** Split a raw line into plain text and styled segments (SGR 0,1,22,30-37,39,40-47,49,90-97,100-107). */
  function parseAnsi(raw) {
    if (raw.indexOf('\x1b') === -1) return { text: raw, segs: null };
    const segs = [];
    let fg = -1, bg = -1, bold = false, last = 0, text = '', m;
    const cls = () => (fg >= 0 ? 'a-f' + fg + ' ' : '') + (bg >= 0 ? 'a-b' + bg + ' ' : '') + (bold ? 'a-bold' : '');
    const add = (t) => { if (t) { segs.push({ t, c: cls().trim() }); text += t; } };
    CSI.lastIndex = 0;
    while ((m = CSI.exec(raw))) {
      add(raw.slice(last, m.index).replace(/\x1b/g, ''));
      last = CSI.lastIndex;
      if (m[2] !== 'm') continue;
      const ps = m[1] === '' ? [0] : m[1].split(/[;:]/).map((x) => (x === '' ? 0 : Number(x)));
      for (let i = 0; i < ps.length; i++) {
        const p = ps[i];
        if (p === 0) { fg = -1; bg = -1; bold = false; }
        else if (p === 1) bold = true;
        else if (p === 22) bold = false;
        else if (p >= 30 && p <= 37) fg = p - 30;
        else if (p === 39) fg = -1;
        else if (p >= 40 && p <= 47) bg = p - 40;
        else if (p === 49) bg = -1;
        else if (p >= 90 && p <= 97) fg = p - 90 + 8;
        else if (p >= 100 && p <= 107) bg = p - 100 + 8;
        else if (p === 38 || p === 48) {
          // 256-colour / truecolour: use the basic 16 when they map, skip the rest
          if (ps[i + 1] === 5) { const c = ps[i + 2]; if (c < 16) { if (p === 38) fg = c; else bg = c; } i += 2; }
          else if (ps[i + 1] === 2) i += 4;
        }
      }
    }
    add(raw.slice(last).replace(/\x1b/g, ''));
    if (segs.every((s) => !s.c)) return { text, segs: null };
    return { text, segs };
  }

  // ---------------------------------------------------------------- filter and highlights
  // filter.slow / rule.slow: null, or {label, why}: the worker could not run this regex (too slow).
  const filter = { q: '', regex: false, caseSensitive: false, invert: false, re: null, lower: '', error: null, slow: null, slowKey: '' };
  let highlights = []; // [{pattern, color, re, regex (a /regex/ rule), slow}]
  const HL_COLORS = 6;
  const MAX_MARKS = 64; // marks per pattern and line
  const HL_REGEX = /^\/(.+)\/([a-z]*)$/;

  const filterKey = () => JSON.stringify([filter.q, filter.regex, filter.caseSensitive]);
  function compileFilter() {
    filter.re = null; filter.error = null; filter.lower = filter.caseSensitive ? filter.q : filter.q.toLowerCase();
    // A pattern found too slow stays so until it is edited: the verdict would be the same.
    if (filter.slowKey !== filterKey()) filter.slow = null;
    if (filter.q && filter.regex) {
      try { filter.re = new RegExp(filter.q, filter.caseSensitive ? 'g' : 'gi'); } catch (err) { filter.error = err.message; }
    }
  }

  /** A highlight rule: a word (any case) or a /regex/ (case-sensitive only if it has capitals). */
  function makeRule(pattern, color) {
    const m = HL_REGEX.exec(pattern);
    let re = null;
    try {
      if (m) re = new RegExp(m[1], 'g' + (m[2].includes('i') || !/[A-Z]/.test(m[1]) ? 'i' : ''));
      else re = new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gi');
    } catch { /* invalid: re stays null */ }
    return { pattern, color, re, regex: !!m, slow: null };
  }

  // The view matches with a snapshot of the filter and rules that rebuild() takes, so a change
  // takes effect for the whole view at once:
  //   pick   null (every line shows) | {slot, lower, cs, invert}: the filter; slot >= 0 if a regex
  //   marks  [{slot, re, cls, rule}] what marks a line, in the order marks are laid (the filter's,
  //          then the rules'); slot >= 0: a user regex, its matches come from the worker; else
  //          re, a plain word (escaped, so it cannot backtrack), or the filter's substring if null
  //   work   [{re, test, ranges, owner}] the user regexes the worker runs, by slot
  let matcher = { pick: null, marks: [], work: [] };

  /** Notices always show; lines go through the filter (a regex one: only once judged, see below). */
  function matches(e) {
    const p = matcher.pick;
    if (e.kind || !p) return true;
    const hit = p.slot >= 0 ? e.hit : (p.cs ? e.text : e.text.toLowerCase()).includes(p.lower);
    return p.invert ? !hit : hit;
  }

  /** Up to MAX_MARKS non-empty matches of a global re in text, flat [start, end, ...] (the loop
   *  regex-worker.js runs for user regexes; here only for plain words). */
  function findRanges(re, text) {
    const out = [];
    re.lastIndex = 0;
    let m;
    while (out.length < 2 * MAX_MARKS && (m = re.exec(text))) {
      if (m[0].length === 0) { re.lastIndex++; continue; }
      out.push(m.index, m.index + m[0].length);
    }
    return out;
  }

  /** Non-overlapping [start, end, cls] ranges in e's text: the filter's match, then rules in order. */
  function markRanges(e) {
    const out = [];
    let rowHl = -1;
    const add = (flat, cls, rule) => {
      if (!flat || !flat.length) return;
      if (rule >= 0 && rowHl < 0) rowHl = rule;
      for (let i = 0; i < flat.length; i += 2) {
        const s = flat[i], t = flat[i + 1];
        if (!out.some((r) => s < r[1] && t > r[0])) out.push([s, t, cls]);
      }
    };
    for (const mk of matcher.marks) {
      if (mk.slot >= 0) add(e.found && e.found[mk.slot], mk.cls, mk.rule);
      else if (mk.re) add(findRanges(mk.re, e.text), mk.cls, mk.rule);
      else {
        const p = matcher.pick, hay = p.cs ? e.text : e.text.toLowerCase(), flat = [];
        for (let i = 0; flat.length < 2 * MAX_MARKS && (i = hay.indexOf(p.lower, i)) !== -1; i += p.lower.length) flat.push(i, i + p.lower.length);
        add(flat, mk.cls, mk.rule);
      }
    }
    out.sort((a, b) => a[0] - b[0]);
    return { ranges: out, rowHl };
  }

  // ---------------------------------------------------------------- user regexes in a Worker
  // The browser's regex engine backtracks: one user pattern can take exponential time on one line
  // (/^(a+)+$/ on "aaaa...a!" runs for hours), and on this thread that is a frozen tab. So every
  // user regex (the filter's, /regex/ rules) runs in regex-worker.js, on batches of lines, and
  // each pattern has REGEX_BUDGET_MS per batch: a worker that has not answered by then is
  // terminated and replaced, and the pattern is marked too slow and left out (the filter then
  // shows every line, as for an invalid regex; a rule marks nothing). Substring filters and plain
  // words stay here: they cannot backtrack.
  //
  // Results come back later, so while the matcher has work for the worker, lines are judged in
  // arrival order and judge.judgedN says how far: ingest() stops there and the held count counts
  // only judged lines, so no row reaches the DOM before its filter result and marks are known.
  // rebuild() starts judging again from the oldest stored line and redraws (finishRebuild) once
  // judging has passed every line the redraw may show; the old rows stay until then.
  const REGEX_BUDGET_MS = 250;   // per pattern and batch
  const WORKER_START_MS = 10000; // a worker that has not started a batch by then is broken
  const BATCH_LINES = 1000, BATCH_CHARS = 256 * 1024;
  const TOO_SLOW = { label: 'Regex too slow', why: `pattern too slow (over ${REGEX_BUDGET_MS} ms on these lines): simplify it` };
  const judge = { worker: null, batch: null, nextId: 1, sentN: 0, judgedN: 0, queued: false };
  let rebuildDue = false, rebuildLimitN = 0;

  /** Every entry with n up to this has a known match under the current matcher. */
  const judgedThrough = () => (matcher.work.length ? judge.judgedN : nextN - 1);

  /** Index in the store of the first entry with n > after (n grows along the store, with holes). */
  function indexAfter(after) {
    let lo = 0, hi = store.len;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (store.at(mid).n <= after) lo = mid + 1; else hi = mid; }
    return lo;
  }

  function stopWorker() {
    if (judge.batch) { clearTimeout(judge.batch.timer); judge.batch = null; }
    if (judge.worker) { judge.worker.terminate(); judge.worker = null; }
  }

  /** Snapshot filter and rules into the matcher; the worker starts over from the oldest line. */
  function newMatcher() {
    if (judge.batch) stopWorker(); // busy with lines for the old matcher
    const work = [], marks = [];
    let pick = null;
    if (filter.q && !filter.error && !filter.slow) {
      const slot = filter.re ? work.push({ re: filter.re, test: true, ranges: !filter.invert, owner: filter }) - 1 : -1;
      pick = { slot, lower: filter.lower, cs: filter.caseSensitive, invert: filter.invert };
      if (!filter.invert) marks.push({ slot, re: null, cls: 'm-q', rule: -1 });
    }
    for (const h of highlights) {
      if (!h.re || h.slow) continue;
      const slot = h.regex ? work.push({ re: h.re, test: false, ranges: true, owner: h }) - 1 : -1;
      marks.push({ slot, re: h.re, cls: 'hl-' + h.color, rule: h.color });
    }
    matcher = { pick, marks, work };
    judge.sentN = judge.judgedN = store.len ? store.at(0).n - 1 : nextN - 1;
    if (work.length) pumpSoon();
  }

  function pumpSoon() { if (!judge.queued) { judge.queued = true; queueMicrotask(pump); } }
  /** Send the worker the next batch of unjudged lines, if it is idle. */
  function pump() {
    judge.queued = false;
    if (!matcher.work.length || judge.batch) return;
    const from = indexAfter(judge.sentN);
    const list = [], texts = [];
    let i = from, chars = 0;
    for (; i < store.len && list.length < BATCH_LINES && chars < BATCH_CHARS; i++) {
      const e = store.at(i);
      if (e.kind) continue;
      list.push(e); texts.push(e.text); chars += e.text.length;
    }
    if (i === from) return;
    const lastN = store.at(i - 1).n;
    judge.sentN = lastN;
    if (!list.length) { judged(lastN); return; } // only notices
    if (!judge.worker) {
      const w = new Worker(apiUrl('regex-worker.js'));
      w.onmessage = onWorkerMessage;
      w.onerror = (ev) => { ev.preventDefault(); if (judge.worker === w) workerFailed(ev.message || 'the worker failed'); };
      judge.worker = w;
    }
    const b = { id: judge.nextId++, list, lastN, answers: [], timer: 0 };
    judge.batch = b;
    judge.worker.postMessage({ id: b.id, texts, work: matcher.work.map((w) => ({ source: w.re.source, flags: w.re.flags, test: w.test, ranges: w.ranges })) });
    b.timer = setTimeout(() => workerFailed('the worker did not start'), WORKER_START_MS);
  }

  function onWorkerMessage(ev) {
    const b = judge.batch, msg = ev.data;
    if (!b || msg.id !== b.id) return;
    if (msg.type === 'slot') b.answers.push(msg); // patterns answer in slot order
    if (b.answers.length < matcher.work.length) { armBudget(b); return; }
    clearTimeout(b.timer);
    judge.batch = null;
    const pickSlot = matcher.pick ? matcher.pick.slot : -1;
    b.list.forEach((e, i) => {
      e.hit = pickSlot < 0 || b.answers[pickSlot].hits[i] === 1;
      let found = null;
      b.answers.forEach((a, slot) => { const f = a.found && a.found[i]; if (f) (found || (found = []))[slot] = f; });
      e.found = found;
    });
    judged(b.lastN);
  }

  /** The next pattern of batch b gets REGEX_BUDGET_MS from now. */
  function armBudget(b) {
    const slot = b.answers.length, due = now() + REGEX_BUDGET_MS;
    let lookedAgain = false;
    const check = () => {
      if (judge.batch !== b) return;
      // A timer that runs late means this thread was busy: the answer may be queued behind it.
      if (!lookedAgain && now() - due > 50) { lookedAgain = true; b.timer = setTimeout(check, 0); return; }
      const owner = matcher.work[slot].owner;
      stopWorker();
      markSlow([owner], TOO_SLOW);
    };
    clearTimeout(b.timer);
    b.timer = setTimeout(check, REGEX_BUDGET_MS);
  }
  function workerFailed(why) {
    const owners = matcher.work.map((w) => w.owner);
    stopWorker();
    markSlow(owners, { label: 'Regex unavailable', why: 'regex matching is unavailable: ' + why });
  }
  /** Leave these patterns out (the filter's or rules), say why, and redraw without them. */
  function markSlow(owners, slow) {
    for (const o of owners) {
      o.slow = slow;
      if (o === filter) filter.slowKey = filterKey();
    }
    syncFilterUi();
    renderHighlights();
    rebuild();
  }

  /** Judging has reached lastN: count what waits while held, finish a rebuild, go on. */
  function judged(lastN) {
    const from = judge.judgedN;
    judge.judgedN = Math.max(from, lastN);
    if (rebuildDue) finishRebuild();
    else if (held()) {
      for (let i = indexAfter(Math.max(from, ingestedN)); i < store.len && store.at(i).n <= judge.judgedN; i++) if (matches(store.at(i))) heldCount++;
    }
    schedule();
    pumpSoon();
  }

  // ---------------------------------------------------------------- rendering
  const logEl = $('log');
  const rowsEl = $('rows');
  // Rows live in chunks of CHUNK rows (div.chunk > div.row). Chunks carry content-visibility:auto,
  // so the browser skips layout and paint of the off-screen ones; trimming drops whole chunks.
  const CHUNK = 64;
  let domRows = 0;  // rows in the DOM
  let domLines = 0; // of which line rows (not notices)

  function clearRows() { rowsEl.textContent = ''; domRows = 0; domLines = 0; }
  function appendRows(list) {
    let last = rowsEl.lastElementChild;
    let i = 0;
    while (i < list.length) {
      if (!last || last.childElementCount >= CHUNK) {
        last = document.createElement('div');
        last.className = 'chunk';
        rowsEl.appendChild(last);
      }
      const frag = document.createDocumentFragment();
      for (let room = CHUNK - last.childElementCount; room > 0 && i < list.length; room--, i++) {
        const r = list[i];
        frag.appendChild(r);
        domRows++;
        if (!r.tcEntry.kind) domLines++;
      }
      last.appendChild(frag);
    }
  }
  function* allRows() {
    for (let c = rowsEl.firstElementChild; c; c = c.nextElementSibling) for (let r = c.firstElementChild; r; r = r.nextElementSibling) yield r;
  }

  function fillText(el, e, ranges) {
    const segs = e.segs;
    if (!ranges.length && !segs) { el.textContent = e.text; return; }
    const list = segs || [{ t: e.text, c: '' }];
    let pos = 0, ri = 0;
    for (const seg of list) {
      const t = seg.t;
      let s = 0;
      while (s < t.length) {
        const abs = pos + s;
        while (ri < ranges.length && ranges[ri][1] <= abs) ri++;
        let end = t.length, mark = null;
        if (ri < ranges.length) {
          const r = ranges[ri];
          if (r[0] <= abs) { mark = r[2]; end = Math.min(end, r[1] - pos); } else end = Math.min(end, r[0] - pos);
        }
        const piece = t.slice(s, end);
        let node = document.createTextNode(piece);
        if (seg.c) { const sp = document.createElement('span'); sp.className = seg.c; sp.appendChild(node); node = sp; }
        if (mark) { const mk = document.createElement('mark'); mk.className = mark; mk.appendChild(node); node = mk; }
        el.appendChild(node);
        s = end;
      }
      pos += t.length;
    }
  }

  let merged = false;
  function makeRow(e) {
    const row = document.createElement('div');
    row.tcEntry = e;
    if (e.kind) {
      row.className = 'row note note-' + e.kind;
      row.textContent = e.text;
      return row;
    }
    if (options.time !== 'off') {
      const ts = document.createElement('span');
      ts.className = 'ts';
      ts.textContent = options.time === 'absolute' ? fmtClock(e.t) : fmtAgo(e.t);
      ts.title = fmtFull(e.t);
      row.appendChild(ts);
    }
    const ln = document.createElement('span');
    ln.className = 'ln';
    ln.textContent = e.seq;
    row.appendChild(ln);
    if (merged) {
      const fl = document.createElement('span');
      const f = files.get(e.f);
      fl.className = 'fl fc-' + (f ? f.color : 0);
      fl.textContent = e.f;
      fl.title = f ? f.path : e.f;
      row.appendChild(fl);
    }
    const tx = document.createElement('span');
    tx.className = 'tx';
    const { ranges, rowHl } = matcher.marks.length ? markRanges(e) : { ranges: [], rowHl: -1 };
    fillText(tx, e, ranges);
    row.appendChild(tx);
    let cls = 'row';
    if (rowHl >= 0) cls += ' hr-' + rowHl;
    const c0 = e.text.charCodeAt(0);
    if ((c0 === 123 || c0 === 91) && e.text.length > 1) cls += ' js';
    if (e.trunc) {
      cls += ' trunc';
      const cut = document.createElement('span');
      cut.className = 'cut';
      cut.textContent = 'truncated';
      cut.title = "This line was cut at the server's maximum line length";
      row.appendChild(cut);
    }
    row.className = cls;
    return row;
  }

  /** Drop rows from the top until the DOM holds at most the cap. */
  function trimDom() {
    let excess = domRows - options.maxRows;
    if (excess <= 0) return;
    let lines = 0;
    while (excess > 0) {
      const c = rowsEl.firstElementChild;
      const n = c.childElementCount;
      if (n <= excess) {
        for (let r = c.firstElementChild; r; r = r.nextElementSibling) if (!r.tcEntry.kind) lines++;
        c.remove();
        excess -= n; domRows -= n;
      } else {
        for (; excess > 0; excess--, domRows--) { const r = c.firstElementChild; if (!r.tcEntry.kind) lines++; r.remove(); }
      }
    }
    domLines -= lines;
    stats.trimmed += lines;
  }

  let frameRequested = false;
  let uiDirty = true;
  function schedule() {
    uiDirty = true;
    if (!frameRequested) { frameRequested = true; requestAnimationFrame(frame); }
  }

  /** Move new store entries that pass the filter (judged ones only) into the pending queue. */
  function ingest() {
    const upTo = judgedThrough();
    if (rebuildDue || upTo <= ingestedN) return;
    for (let i = indexAfter(ingestedN); i < store.len; i++) {
      const e = store.at(i);
      if (e.n > upTo) break;
      if (matches(e)) pending.push(e);
    }
    ingestedN = upTo;
    // More than a screenful waiting: the oldest would be trimmed the moment they were drawn.
    const waiting = pending.length - pendingHead;
    if (waiting > options.maxRows) {
      const skip = waiting - options.maxRows;
      for (let j = pendingHead; j < pendingHead + skip; j++) if (!pending[j].kind) stats.trimmed++;
      pendingHead += skip;
    }
    if (pendingHead > 4096 && pendingHead * 2 > pending.length) { pending = pending.slice(pendingHead); pendingHead = 0; }
  }

  const FRAME_BUDGET_MS = 10;
  function frame() {
    frameRequested = false;
    if (!held()) {
      ingest();
      if (dropNoticeDue) {
        // Goes where the lost lines were: before the buffered ones, and kept on screen.
        pending.splice(pendingHead, 0, { n: 0, f: null, seq: 0, t: lastT, segs: null, trunc: false, kind: 'drop',
          text: `${fmt(dropNoticeDue)} lines were not shown: the pause buffer (${fmt(options.keep)} lines) overflowed` });
        if (pending.length - pendingHead > options.maxRows) { pending.splice(pendingHead + 1, 1); stats.trimmed++; }
        dropNoticeDue = 0;
      }
      if (pending.length > pendingHead) {
        const t0 = now();
        const list = [];
        while (pendingHead < pending.length) {
          const e = pending[pendingHead];
          pending[pendingHead++] = undefined;
          list.push(makeRow(e));
          if ((list.length & 63) === 0 && now() - t0 > FRAME_BUDGET_MS) break;
        }
        if (pendingHead >= pending.length) { pending = []; pendingHead = 0; }
        appendRows(list);
        trimDom();
        scrollToEnd();
        if (pendingHead < pending.length) { frameRequested = true; requestAnimationFrame(frame); }
      }
    }
    if (uiDirty) updateUi();
  }

  let lastUi = 0;
  let uiTimer = 0;
  /** Counters are throttled; state changes (pause, follow) call updateUi(true) to show at once. */
  function updateUi(force) {
    const t = now();
    if (!force && t - lastUi < 150) {
      if (!uiTimer) uiTimer = setTimeout(() => { uiTimer = 0; updateUi(); }, 160);
      return;
    }
    lastUi = t;
    uiDirty = false;
    $('count-received').textContent = fmt(stats.received);
    $('count-rows').textContent = fmt(domLines); // lines, as received and trimmed count (notices apart)
    $('count-cap').textContent = fmt(options.maxRows);
    $('count-trimmed').textContent = fmt(stats.trimmed);
    const jump = $('jump');
    if (held() && heldCount > 0) {
      $('jump-label').textContent = `${fmt(heldCount)} new line${heldCount === 1 ? '' : 's'}, jump to end`;
      jump.hidden = false;
    } else if (!following) {
      $('jump-label').textContent = 'Jump to end';
      jump.hidden = false;
    } else jump.hidden = true;
    const banner = $('banner');
    if (paused) {
      banner.hidden = false;
      banner.classList.toggle('overflow', stats.dropped > 0 && dropNoticeDue > 0);
      $('banner-text').textContent = dropNoticeDue > 0
        ? `Paused. Buffer full (${fmt(options.keep)} lines): ${fmt(dropNoticeDue)} oldest new lines dropped, ${fmt(heldCount)} kept.`
        : `Paused. ${fmt(heldCount)} new line${heldCount === 1 ? '' : 's'} buffered (up to ${fmt(options.keep)}).`;
    } else banner.hidden = true;
    const empty = $('empty');
    if (domRows === 0) {
      empty.hidden = false;
      empty.textContent = viewIds.length === 0 ? 'No file selected.'
        : rebuildDue ? 'Matching\u2026'
        : store.len > 0 && !held() ? 'No line matches the filter.'
          : `Waiting for lines from ${viewIds.join(', ')}\u2026`;
    } else empty.hidden = true;
  }

  /** Redraw the view from the store with the current filter and rules (after a change of them). */
  function rebuild() {
    newMatcher();
    pending = []; pendingHead = 0;
    rebuildLimitN = held() ? ingestedN : nextN - 1;
    rebuildDue = true;
    heldCount = 0;
    finishRebuild();
    schedule();
  }
  /** The redraw itself, once every line it may show is judged (at once without a user regex). */
  function finishRebuild() {
    if (!rebuildDue || judgedThrough() < rebuildLimitN) return;
    rebuildDue = false;
    clearRows();
    const limitN = rebuildLimitN;
    const picked = [];
    for (let i = store.len - 1; i >= 0 && picked.length < options.maxRows; i--) {
      const e = store.at(i);
      if (e.n > limitN) continue;
      if (matches(e)) picked.push(e);
    }
    ingestedN = Math.max(ingestedN, limitN);
    const list = [];
    for (let i = picked.length - 1; i >= 0; i--) list.push(makeRow(picked[i]));
    appendRows(list);
    heldCount = 0;
    if (held()) for (let i = indexAfter(ingestedN); i < store.len && store.at(i).n <= judgedThrough(); i++) if (matches(store.at(i))) heldCount++;
    if (following) scrollToEnd();
  }

  // ---------------------------------------------------------------- scrolling, pause
  // Only the user stops following: a scroll upwards counts as theirs if it comes while a pointer
  // is down or soon after wheel/touch/keyboard input. Other scrolls (rows above changing height
  // as chunks get laid out) just stick to the bottom again.
  let userScrollUntil = 0, pointerDown = false, lastTop = 0;
  function atBottom() { return logEl.scrollHeight - logEl.scrollTop - logEl.clientHeight < 6; }
  function scrollToEnd() { logEl.scrollTop = logEl.scrollHeight; lastTop = logEl.scrollTop; }

  const userIntent = () => { userScrollUntil = now() + 800; };
  const stopFollowing = () => {
    if (following && logEl.scrollHeight > logEl.clientHeight) { following = false; heldCount = 0; schedule(); updateUi(true); }
  };
  logEl.addEventListener('scroll', () => {
    const top = logEl.scrollTop;
    const movedUp = top < lastTop - 1;
    lastTop = top;
    if (atBottom()) {
      if (!following) { following = true; heldCount = 0; schedule(); updateUi(true); }
    } else if (following) {
      if (movedUp && (pointerDown || now() < userScrollUntil)) stopFollowing(); else scrollToEnd();
    }
  }, { passive: true });
  logEl.addEventListener('wheel', (ev) => {
    if (ev.deltaY < 0) { userIntent(); if (logEl.scrollTop > 0) stopFollowing(); }
  }, { passive: true });
  logEl.addEventListener('touchmove', userIntent, { passive: true });
  logEl.addEventListener('keydown', (ev) => {
    if (['PageUp', 'ArrowUp', 'Home'].includes(ev.key)) { userIntent(); stopFollowing(); }
  });
  logEl.addEventListener('pointerdown', () => { pointerDown = true; userIntent(); });
  window.addEventListener('pointerup', () => { if (pointerDown) { pointerDown = false; userIntent(); } });
  // Rows growing after layout (a chunk's real height replacing its estimate) keep the end in view.
  new ResizeObserver(() => { if (following) scrollToEnd(); }).observe(rowsEl);

  function setPaused(p) {
    if (paused === p) return;
    const wasHeld = held();
    paused = p;
    if (!wasHeld && held()) heldCount = 0;
    const b = $('pause');
    b.setAttribute('aria-pressed', String(p));
    $('pause-label').textContent = p ? 'Resume' : 'Pause';
    b.title = p ? 'Resume (space): show the buffered lines' : 'Pause (space): buffer new lines without showing them';
    if (!held()) { heldCount = 0; scrollToEnd(); }
    schedule();
    updateUi(true);
  }
  function jumpToEnd() {
    setPaused(false);
    following = true;
    heldCount = 0;
    scrollToEnd();
    schedule();
    updateUi(true);
    requestAnimationFrame(() => { if (following && !paused) scrollToEnd(); });
  }

  // ---------------------------------------------------------------- notices and lines in
  /** A notice in the stream. One about file f sits after f's last line in a merged view (its
   *  time is that line's), another one after every line so far. */
  function notice(kind, text, force, f) {
    addEntry({ f: null, seq: 0, t: (f && f.lastT) || lastT, text, segs: null, trunc: false, kind });
    if (force) schedule();
  }

  /** Lines for file f starting at seq first, read at timeAt(seq). Drops repeats, notices holes,
   *  advances the cursor. */
  function deliver(f, first, lines, truncated, timeAt) {
    if (!lines.length) return;
    let skip = 0;
    if (f.cursor != null) {
      if (first <= f.cursor) {
        skip = Math.min(lines.length, f.cursor - first + 1);
        stats.duplicates += skip;
      } else if (first > f.cursor + 1) {
        stats.missing += first - f.cursor - 1;
        notice('gap', `${f.id}: lines ${fmt(f.cursor + 1)}\u2013${fmt(first - 1)} are missing`, false, f);
      }
    }
    if (skip >= lines.length) return;
    const tset = truncated && truncated.length ? new Set(truncated) : null;
    for (let i = skip; i < lines.length; i++) {
      const raw = typeof lines[i] === 'string' ? lines[i] : String(lines[i]);
      const seq = first + i;
      const p = parseAnsi(raw);
      // A file's lines keep their order whatever the times say (a server whose clock was set back).
      const t = Math.max(timeAt(seq), f.lastT || 0);
      f.lastT = t;
      if (t > lastT) lastT = t;
      addEntry({ f: f.id, seq, t, text: p.text, segs: p.segs, trunc: tset ? tset.has(seq) : false, kind: null });
    }
    stats.received += lines.length - skip;
    f.cursor = first + lines.length - 1;
    if (f.cursor > (f.last_seq || 0)) f.last_seq = f.cursor;
    markActive(f);
    refreshSoon();
  }

  function onGap(f, from, to) {
    stats.missing += to - from + 1;
    notice('gap', `${f.id}: lines ${fmt(from)}\u2013${fmt(to)} will not come (out of the server's history, or this page fell behind)`, false, f);
    if (f.cursor == null || to > f.cursor) f.cursor = to;
  }

  // The unfinished last line of each viewed file (no newline yet), shown under the lines.
  const pendingEl = $('pending');
  const pendingText = new Map();
  function onPartial(f, text) {
    if (typeof text === 'string' && text.length) pendingText.set(f.id, text); else pendingText.delete(f.id);
    renderPending();
  }
  function renderPending() {
    pendingEl.textContent = '';
    for (const id of viewIds) {
      const text = pendingText.get(id);
      if (text == null) continue;
      const row = document.createElement('div');
      row.className = 'row';
      const ln = document.createElement('span');
      ln.className = 'ln';
      const tx = document.createElement('span');
      tx.className = 'tx';
      tx.textContent = (viewIds.length > 1 ? id + ': ' : '') + parseAnsi(text).text;
      row.append(ln, tx);
      pendingEl.append(row);
    }
    pendingEl.hidden = !pendingEl.childElementCount;
    if (following) scrollToEnd();
  }

  function onFileState(f, state, m) {
    const words = { created: 'was created', truncated: 'was truncated', rotated: 'was rotated', deleted: 'was deleted', ended: 'ended (end of input)', started: 'started (command)' };
    if (state === 'exited') {
      words.exited = m && m.signal != null ? `exited on signal ${m.signal}` : `exited with status ${m && m.code != null ? m.code : '?'}`;
    }
    // An ended stream (standard input) reads no more, nor an exited command until it starts again; their lines stay.
    if (state === 'deleted' || state === 'ended' || state === 'exited') f.exists = false;
    if (state === 'created' || state === 'rotated' || state === 'truncated' || state === 'started') f.exists = true;
    // The marker says what the lines after it are: where they come from is not on every row.
    const next = {
      rotated: `: the lines below are from the new file at ${f.path || f.id} (and from the old one, renamed away, while it is still written to)`,
      truncated: ': the lines below are from its start again',
      created: `: the lines below are from the new file at ${f.path || f.id}`,
    }[state] || '';
    if (viewIds.includes(f.id)) notice('file', `${f.id} ${words[state] || state}${next}`, false, f);
    renderFileItem(f);
  }

  /** The server did not take our cursor for f (another numbering): its backlog follows. */
  function onReset(f, newEpoch) {
    if (newEpoch != null && newEpoch !== epoch) onEpoch(newEpoch);
    if (viewIds.includes(f.id) && f.cursor != null) {
      dropLinesOf([f.id]);
      notice('restart', `${f.id}: the server numbers lines anew; its earlier lines here are replaced by its recent lines`);
    }
    f.cursor = null; f.baseline = null;
  }

  function onEpoch(newEpoch) {
    if (epoch != null && newEpoch !== epoch) {
      // The backlog that follows repeats lines we hold, under new numbers: drop ours (no line is
      // shown twice), and say so where they were.
      const had = viewIds.filter((id) => files.get(id) && files.get(id).cursor != null);
      dropLinesOf(had);
      notice('restart', 'server restarted: line numbers start again; ' +
        (had.length ? `the earlier lines of ${had.join(', ')} are replaced by its recent lines` : 'showing its recent lines'));
      for (const f of files.values()) { f.cursor = null; f.subscribed = false; }
    }
    epoch = newEpoch;
  }

  /** Forget the lines of these files (a numbering that is gone) and redraw; counters follow. */
  function dropLinesOf(ids) {
    if (!ids.length) return;
    const set = new Set(ids);
    const waiting = staged.length + late.length;
    unstage((e) => e.kind || !set.has(e.f));
    const goneWaiting = waiting - staged.length - late.length; // never shown, so never trimmed
    let gone = 0;
    let onScreen = 0;
    for (const r of allRows()) if (!r.tcEntry.kind && set.has(r.tcEntry.f)) onScreen++;
    const old = store;
    store = new Ring(options.keep);
    for (let i = 0; i < old.len; i++) { const e = old.at(i); if (!e.kind && set.has(e.f)) gone++; else store.push(e); }
    // received = rows + trimmed (+ filtered out) holds on: the lines gone leave both sides.
    stats.received = Math.max(0, stats.received - gone - goneWaiting);
    stats.trimmed = Math.max(0, stats.trimmed - (gone - onScreen));
    for (const id of ids) { pendingText.delete(id); const f = files.get(id); if (f) f.lastT = 0; }
    renderPending();
    rebuild();
  }

  // ---------------------------------------------------------------- files
  function setFiles(list) {
    const seen = new Set();
    list.forEach((x, i) => {
      seen.add(x.id);
      let f = files.get(x.id);
      if (!f) {
        f = { id: x.id, cursor: null, baseline: null, subscribed: false, activity: 0, el: null };
        files.set(x.id, f);
      }
      if (f.last_seq != null && x.last_seq > f.last_seq && !viewIds.includes(x.id)) f.activity = now();
      f.path = x.path; f.exists = x.exists !== false; f.size = x.size; f.last_seq = x.last_seq;
      f.color = i % 8;
    });
    for (const id of [...files.keys()]) if (!seen.has(id)) files.delete(id);
    fileOrder = list.map((x) => x.id);
    renderFiles();
  }

  function renderFiles() {
    const ul = $('files');
    ul.textContent = '';
    for (const id of fileOrder) {
      const f = files.get(id);
      const li = document.createElement('li');
      li.className = 'file';
      li.dataset.id = id;
      const cb = document.createElement('input');
      cb.type = 'checkbox'; cb.className = 'pick'; cb.title = 'Include in the merged view';
      cb.setAttribute('aria-label', 'Include ' + id + ' in the view');
      const dot = document.createElement('span');
      dot.className = 'dot';
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = id;
      const meta = document.createElement('span');
      meta.className = 'meta';
      li.append(cb, dot, name, meta);
      f.el = li;
      ul.appendChild(li);
      renderFileItem(f);
    }
  }
  function renderFileItem(f) {
    const li = f.el;
    if (!li) return;
    const inView = viewIds.includes(f.id);
    li.classList.toggle('active', inView);
    li.classList.toggle('missing', !f.exists);
    li.classList.toggle('busy', now() - f.activity < 2500 && f.activity > 0);
    li.classList.toggle('has-color', merged && inView);
    const dot = li.querySelector('.dot');
    dot.className = 'dot' + (merged && inView ? ' dc-' + f.color : '');
    li.querySelector('.pick').checked = inView;
    const text = f.exists
      ? [fmtBytes(f.size), f.last_seq != null ? fmt(f.last_seq) + (f.last_seq === 1 ? ' line' : ' lines') : null].filter(Boolean).join(' \u00b7 ')
      : '\u0000' + (f.path || '');
    if (li.tcMeta !== text) {
      li.tcMeta = text;
      const meta = li.querySelector('.meta');
      meta.textContent = '';
      if (!f.exists) {
        const m = document.createElement('span'); m.className = 'miss'; m.textContent = 'missing';
        meta.append(m, ' \u00b7 ' + (f.path || ''));
      } else meta.textContent = text;
    }
    li.title = f.path || f.id;
  }
  function markActive(f) {
    const was = f.activity && now() - f.activity < 2500;
    f.activity = now();
    if (!was) renderFileItem(f);
  }
  setInterval(() => { for (const f of files.values()) renderFileItem(f); }, 1000);

  // Keep sizes, missing state and activity of every file fresh (the view's files also get it live).
  async function refreshFiles() {
    try {
      const r = await fetch(apiUrl('api/files'), { cache: 'no-store', headers: authHeaders() });
      if (r.status === 401 || r.status === 403) { await accessDenied(r); return false; }
      if (!r.ok) return false;
      const list = await r.json();
      if (Array.isArray(list)) {
        const before = fileOrder.join('\n');
        for (const x of list) {
          const f = files.get(x.id);
          if (f && x.last_seq > (f.last_seq || 0)) markActive(f);
        }
        if (before !== list.map((x) => x.id).join('\n') || files.size === 0) { setFiles(list); ensureView(); }
        else {
          for (const x of list) { const f = files.get(x.id); f.exists = x.exists !== false; f.size = x.size; if (!viewIds.includes(x.id)) f.last_seq = x.last_seq; renderFileItem(f); }
        }
      }
      return true;
    } catch { return false; }
  }
  setInterval(() => { if (!document.hidden && status !== 'offline' && !denied) refreshFiles(); }, 3000);
  // Sizes of the files being watched go stale as lines arrive: refresh soon, at most every 2 s.
  let lastRefresh = 0, refreshTimer = 0;
  function refreshSoon() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(() => { refreshTimer = 0; lastRefresh = now(); refreshFiles(); }, Math.max(300, 2000 - (now() - lastRefresh)));
  }

  // ---------------------------------------------------------------- the view
  function ensureView() {
    const want = hashState.files.filter((id) => files.has(id));
    if (want.length === 0 && fileOrder.length) want.push(fileOrder[0]);
    if (want.join('\n') !== viewIds.join('\n')) setView(want, true);
  }

  function setView(ids, fromHash) {
    ids = ids.filter((id) => files.has(id));
    ids.sort((a, b) => fileOrder.indexOf(a) - fileOrder.indexOf(b));
    const old = viewIds;
    const stay = new Set(ids.filter((id) => old.includes(id)));
    for (const id of old) {
      if (stay.has(id)) continue;
      const f = files.get(id);
      wsSend({ type: 'unsubscribe', file: id });
      if (f) { f.cursor = null; f.subscribed = false; }
    }
    // What waits to be sorted in is stored first (in its order), then kept like the rest.
    flushStaged();
    flushLate();
    for (const id of old) if (!stay.has(id)) { const f = files.get(id); if (f) f.lastT = 0; }
    viewIds = ids;
    merged = ids.length > 1;
    // Lines of files that stay in the view are kept; everything else starts afresh.
    const oldStore = store;
    store = new Ring(options.keep);
    for (let i = 0; i < oldStore.len; i++) { const e = oldStore.at(i); if (!e.kind && stay.has(e.f)) store.push(e); }
    pending = []; pendingHead = 0; ingestedN = nextN - 1; heldCount = 0; dropNoticeDue = 0;
    // The counters describe this view: the kept lines count as received, those past the cap as
    // trimmed (the redraw shows the newest options.maxRows).
    stats.received = store.len; stats.trimmed = Math.max(0, store.len - options.maxRows);
    stats.dropped = 0; stats.duplicates = 0; stats.missing = 0;
    following = true;
    setPaused(false);
    const maxLen = Math.max(4, ...ids.map((id) => id.length));
    rowsEl.style.setProperty('--fl-w', Math.min(maxLen, 24) + 'ch');
    const title = $('view-title');
    if (ids.length === 1) { const f = files.get(ids[0]); title.textContent = f.path || f.id; title.title = f.path || f.id; }
    else if (ids.length > 1) { title.textContent = `${ids.length} files merged`; title.title = ids.join(', '); }
    else { title.textContent = ''; title.title = ''; }
    document.title = ids.length === 1 ? `${ids[0]} \u00b7 tailcast` : ids.length ? `${ids.length} files \u00b7 tailcast` : 'tailcast';
    for (const f of files.values()) renderFileItem(f);
    clearRows(); // not the old view's rows while the new one is being judged
    rebuild();
    if (transport === 'ws' && wsReady) { for (const id of ids) if (!stay.has(id)) subscribeWs(files.get(id)); }
    else if (transport === 'poll') startPolling();
    if (!fromHash) writeHash();
  }

  // ---------------------------------------------------------------- WebSocket transport
  let sock = null;          // the live socket (after hello)
  let wsReady = false;
  let lastHeard = 0, lastSent = 0;
  let heartbeatMs = 30000, timeoutMs = 35000;
  let attempt = 0;          // consecutive failed connection attempts
  let wsRefusals = 0;       // WS failed while plain HTTP worked
  let reconnectTimer = 0;
  let probeTimer = 0;

  function setStatus(s) {
    if (status === s) return;
    status = s;
    const el = $('status');
    el.dataset.state = s;
    $('status-label').textContent = { locked: 'token needed' }[s] || s;
    el.title = {
      live: 'Live over WebSocket', 'long-poll': 'Live over HTTP long-poll (WebSocket unavailable)',
      reconnecting: 'Connection lost; reconnecting', offline: 'Server unreachable; retrying', connecting: 'Connecting',
      locked: 'The server needs a token', forbidden: 'The server refuses this address (Host or Origin)',
    }[s] || s;
  }

  function wsSend(msg) {
    if (!sock || !wsReady || sock.readyState !== 1) return false;
    try { sock.send(JSON.stringify(msg)); lastSent = now(); return true; } catch { return false; }
  }

  function subscribeWs(f) {
    if (!f) return;
    let msg;
    // The epoch goes with the cursor: a server that numbers lines anew answers with a `reset`
    // and its backlog instead of taking our seq in its numbering.
    if (f.cursor != null) msg = { type: 'subscribe', file: f.id, after: f.cursor };
    else if (f.subscribed && f.baseline != null) msg = { type: 'subscribe', file: f.id, after: Math.max(0, f.baseline - options.backlog) };
    else { msg = { type: 'subscribe', file: f.id, backlog: options.backlog }; f.baseline = f.last_seq || 0; }
    if (msg.after != null && epoch != null) { msg.epoch = epoch; msg.backlog = options.backlog; }
    f.subscribed = true;
    wsSend(msg);
  }

  function backoff(n) {
    const base = Math.min(8000, 250 * Math.pow(2, Math.max(0, n - 1)));
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  /** Open a socket. A probe (from long-poll mode) only takes over if it gets a hello. */
  let connecting = null;     // the socket being opened, if any
  function connectWs(probe) {
    if (connecting) return;
    if (!probe) clearTimeout(reconnectTimer);
    let ws;
    try { ws = new WebSocket(wsUrl()); } catch { if (!probe) onWsFailed(false); return; }
    connecting = ws;
    let hello = false, done = false;
    const handshake = setTimeout(() => { if (!hello) finish(); }, 10000);
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(handshake);
      if (connecting === ws) connecting = null;
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(); } catch { /* already closed */ }
      if (sock === ws) { sock = null; wsReady = false; }
      if (!probe || hello) onWsFailed(hello);
    };
    ws.tcFinish = finish;
    ws.onerror = () => {};
    ws.onclose = finish;
    ws.onmessage = (ev) => {
      lastHeard = now();
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      if (!hello) {
        if (m.type !== 'hello') return;
        hello = true;
        clearTimeout(handshake);
        if (connecting === ws) connecting = null;
        if (probe) stopPolling();
        sock = ws; wsReady = true; transport = 'ws'; attempt = 0; wsRefusals = 0;
        clearInterval(probeTimer); probeTimer = 0;
        onHello(m);
        return;
      }
      onWsMessage(m);
    };
  }

  let lostNotice = false;
  function onHello(m) {
    heartbeatMs = m.heartbeat_ms > 0 ? m.heartbeat_ms : 30000;
    timeoutMs = m.timeout_ms > 0 ? m.timeout_ms : heartbeatMs + 5000;
    lastSent = now();
    setStatus('live');
    const hadView = viewIds.length > 0;
    if (lostNotice && epoch === m.epoch) notice('conn', 'reconnected; resuming where it stopped');
    lostNotice = false;
    onEpoch(m.epoch);
    if (Array.isArray(m.files)) {
      const before = fileOrder.join('\n');
      if (before !== m.files.map((x) => x.id).join('\n')) { setFiles(m.files); }
      else for (const x of m.files) { const f = files.get(x.id); f.exists = x.exists !== false; f.size = x.size; if (f.cursor == null) f.last_seq = x.last_seq; renderFileItem(f); }
    }
    if (!hadView || viewIds.some((id) => !files.has(id))) { viewIds = viewIds.filter((id) => files.has(id)); ensureView(); }
    if (hadView) for (const id of viewIds) subscribeWs(files.get(id));
  }

  function onWsMessage(m) {
    const f = m.file != null ? files.get(m.file) : null;
    switch (m.type) {
      case 'lines':
        if (f && viewIds.includes(f.id) && Array.isArray(m.lines)) deliver(f, m.seq, m.lines, m.truncated, timeOf(m.time, m.times));
        break;
      case 'gap':
        if (f && viewIds.includes(f.id)) onGap(f, m.from, m.to);
        break;
      case 'reset':
        if (f) onReset(f, m.epoch);
        break;
      case 'file':
        if (f) onFileState(f, m.state, m);
        break;
      case 'files':
        // A live glob or directory found a file.
        if (Array.isArray(m.files)) setFiles(m.files);
        break;
      case 'partial':
        if (f) onPartial(f, m.text);
        break;
      case 'ping':
        wsSend({ type: 'pong' });
        break;
      case 'pong':
        break;
      case 'error':
        notice('error', `server: ${m.code || 'error'}${m.message ? ': ' + m.message : ''}`);
        break;
      case 'hello':
        onHello(m);
        break;
      default:
        break;
    }
  }

  /** A socket ended (hadHello: it had been live) or never came up. */
  async function onWsFailed(hadHello) {
    if (transport === 'poll' || denied) return;
    wsReady = false;
    if (hadHello) {
      attempt = 1;
      setStatus('reconnecting');
      notice('conn', 'connection lost; reconnecting\u2026');
      lostNotice = true;
      reconnectTimer = setTimeout(() => connectWs(false), backoff(attempt));
      return;
    }
    attempt++;
    // Is the server there at all? If plain HTTP works, WebSocket itself is refused.
    const httpOk = await refreshFiles();
    if (denied) return; // a token is needed or the address is refused: the access screen says so
    if (httpOk) {
      wsRefusals++;
      if (wsRefusals >= 2) { startPollMode(); return; }
      reconnectTimer = setTimeout(() => connectWs(false), 300);
      return;
    }
    wsRefusals = 0;
    setStatus(attempt >= 3 ? 'offline' : 'reconnecting');
    reconnectTimer = setTimeout(() => connectWs(false), backoff(attempt));
  }

  function dropSocket() {
    if (sock && sock.tcFinish) sock.tcFinish();
  }

  // heartbeat: answer silence with our own ping; reconnect if the server is silent too long
  setInterval(() => {
    if (transport !== 'ws' || !sock || !wsReady) return;
    const t = now();
    if (t - lastHeard > timeoutMs) { dropSocket(); return; }
    if (t - lastSent > heartbeatMs / 2) wsSend({ type: 'ping' });
  }, 1000);

  window.addEventListener('online', () => {
    if (transport !== 'poll' && !wsReady && !denied) { attempt = 0; connectWs(false); }
  });

  // ---------------------------------------------------------------- access (token, Host, Origin)
  // A 401 (no or wrong token) or 403 (a Host or Origin the server refuses) stops the connection
  // attempts and shows #access instead of an empty page: a token field, or what the operator must
  // set. The answer's JSON body ({error, message}, src/http/error.rs) says which.
  let denied = null; // null | {status, code, message}
  async function accessDenied(r) {
    let body = {};
    try { body = await r.json(); } catch { /* not JSON: a proxy's page */ }
    const hadToken = !!TOKEN;
    denied = { status: r.status, code: body.error || '', message: body.message || '' };
    clearTimeout(reconnectTimer);
    stopPolling();
    if (sock) dropSocket();
    setStatus(r.status === 401 ? 'locked' : 'forbidden');
    const box = $('access'), form = $('access-form'), err = $('access-error');
    box.hidden = false;
    box.dataset.kind = r.status === 401 ? 'token' : 'forbidden';
    if (r.status === 401) {
      $('access-title').textContent = 'This server needs a token';
      $('access-text').textContent = 'It was started with --token (or TAILCAST_TOKEN). Enter that token to see its logs. ' +
        'It is kept for this tab only and never put in the page address.';
      form.hidden = false;
      $('access-fix').hidden = true;
      $('access-retry').hidden = true;
      err.hidden = !hadToken;
      err.textContent = hadToken ? 'The token was refused: it is not the one the server was started with.' : '';
      if (hadToken) setToken(null);
      $('access-token').value = '';
      $('access-token').focus();
    } else {
      $('access-title').textContent = 'This server does not answer to this address';
      $('access-text').textContent = (denied.message ? 'The server said: ' + denied.message + '. ' : '') +
        'To open it here, the operator must add this option (the address of this page; see docs/security.md, "Host check" and "Origin check"):';
      $('access-fix-code').textContent = `--allow-origin ${location.protocol}//${location.host}`;
      $('access-fix').hidden = false;
      form.hidden = true;
      err.hidden = true;
      $('access-retry').hidden = false;
    }
  }
  function accessRetry() {
    denied = null;
    $('access').hidden = true;
    attempt = 0; wsRefusals = 0; transport = null;
    setStatus('connecting');
    connectWs(false);
  }
  $('access-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('access-token').value.trim();
    if (!t) { $('access-error').hidden = false; $('access-error').textContent = 'Enter the token.'; return; }
    setToken(t);
    $('access-token').value = '';
    accessRetry();
  });
  $('access-retry').addEventListener('click', accessRetry);

  // ---------------------------------------------------------------- long-poll transport
  let pollGen = 0;
  const pollAborts = new Set();

  function startPollMode() {
    transport = 'poll';
    sock = null; wsReady = false;
    setStatus('long-poll');
    if (!viewIds.length) ensureView();
    startPolling();
    clearInterval(probeTimer);
    probeTimer = setInterval(() => { if (transport === 'poll' && !document.hidden) connectWs(true); }, 30000);
  }
  function stopPolling() {
    pollGen++;
    for (const ac of pollAborts) ac.abort();
    pollAborts.clear();
  }
  function startPolling() {
    stopPolling();
    const gen = pollGen;
    // One held request for every file of the view (the server answers once for all).
    const fs = viewIds.map((id) => files.get(id)).filter(Boolean);
    if (fs.length) pollLoop(fs, gen);
  }
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  /** Where to resume a file: the seq of its last line, or none (its backlog). */
  function resumeSeq(f) {
    if (f.cursor != null) return f.cursor;
    if (f.subscribed && f.baseline != null) return Math.max(0, f.baseline - options.backlog);
    return null;
  }

  /** The poll URL for the files `fs`: one file's cursor `EPOCH-SEQ`, several files' combined
   * `EPOCH-ID:SEQ,ID:SEQ` (ids with `%` and `,` escaped); files without a cursor get the backlog. */
  function pollUrl(fs, wait) {
    const params = { backlog: options.backlog };
    const seqs = fs.map(resumeSeq);
    for (let i = 0; i < fs.length; i++) if (seqs[i] == null) fs[i].baseline = fs[i].last_seq || 0;
    if (fs.length === 1 && seqs[0] != null) {
      // Qualified with the epoch, so a restarted server answers `reset` instead of using our seq.
      params.after = epoch != null ? `${epoch}-${seqs[0]}` : String(seqs[0]);
    } else if (fs.length > 1 && epoch != null && seqs.some((s) => s != null)) {
      const esc = (id) => id.replace(/%/g, '%25').replace(/,/g, '%2C');
      params.after = `${epoch}-` + fs.map((f, i) => (seqs[i] == null ? null : `${esc(f.id)}:${seqs[i]}`)).filter(Boolean).join(',');
    }
    if (params.after != null) params.timeout = wait;
    const u = new URL(apiUrl('poll', params));
    for (const f of fs) u.searchParams.append('file', f.id);
    return { url: u.toString(), resuming: params.after != null, held: params.after != null && wait > 0 && seqs.every((s) => s != null) };
  }

  async function pollLoop(fs, gen) {
    let fails = 0;
    while (gen === pollGen && transport === 'poll') {
      // After a failure the first request must not be held: it tells at once whether the server
      // is back, and its epoch whether it restarted.
      const { url, resuming, held } = pollUrl(fs, fails > 0 ? 0 : 25);
      const sentEpoch = epoch;
      const ac = new AbortController();
      pollAborts.add(ac);
      const timer = setTimeout(() => ac.abort(), 40000);
      const sentAt = now();
      try {
        const r = await fetch(url, { signal: ac.signal, cache: 'no-store', headers: authHeaders() });
        if (r.status === 401 || r.status === 403) { if (gen === pollGen) { stopPolling(); await accessDenied(r); } return; }
        if (!r.ok) throw new Error('HTTP ' + r.status);
        const top = await r.json();
        if (gen !== pollGen) return;
        fails = 0;
        setStatus('long-poll');
        for (const f of fs) f.subscribed = true;
        if (top.epoch != null && sentEpoch != null && top.epoch !== sentEpoch) {
          // The server restarted: our cursors meant nothing to it.
          if (epoch === sentEpoch) onEpoch(top.epoch); else for (const f of fs) { f.cursor = null; f.subscribed = false; }
          if (resuming) continue;   // the next request asks for a backlog
        }
        if (top.epoch != null) epoch = top.epoch;
        let gotLines = false;
        for (const j of Array.isArray(top.files) ? top.files : [top]) {
          const f = files.get(j.file);
          if (!f || !fs.includes(f)) continue;
          if (j.reset) { if (f.cursor != null) dropLinesOf([f.id]); f.cursor = null; }
          if (j.gap) onGap(f, j.gap.from, j.gap.to);
          if (Array.isArray(j.lines) && j.lines.length && j.first_seq != null) { gotLines = true; deliver(f, j.first_seq, j.lines, j.truncated, timeOf(null, j.times)); }
          if (j.last_seq != null && (f.cursor == null || j.last_seq > f.cursor)) f.cursor = j.last_seq;
        }
        // An empty answer to a held request that came back at once (a server shutting down, a
        // proxy cutting it short): do not spin.
        if (held && !gotLines && now() - sentAt < 500) await sleep(1000);
      } catch (err) {
        if (gen !== pollGen) return;
        fails++;
        setStatus(fails >= 3 ? 'offline' : 'reconnecting');
        await sleep(backoff(fails));
        if (gen !== pollGen) return;
        if (fails >= 2) connectWs(true); // the server may be back, perhaps with WebSocket
      } finally {
        clearTimeout(timer);
        pollAborts.delete(ac);
      }
    }
  }

  // ---------------------------------------------------------------- URL hash
  const hashState = { files: [] };
  function readHash() {
    const p = new URLSearchParams(location.hash.replace(/^#/, ''));
    hashState.files = p.getAll('file').filter(Boolean);
    filter.q = p.get('q') || '';
    filter.regex = p.get('re') === '1';
    filter.caseSensitive = p.get('case') === '1';
    filter.invert = p.get('inv') === '1';
    highlights = p.getAll('hl').map((s) => {
      const m = /^([0-9]):(.*)$/s.exec(s);
      const pattern = m ? m[2] : s;
      const color = m ? Number(m[1]) % HL_COLORS : 0;
      return pattern ? makeRule(pattern, color) : null;
    }).filter(Boolean);
    const wrap = p.get('wrap');
    if (wrap != null) setWrap(wrap !== '0', true);
    compileFilter();
    syncFilterUi();
    renderHighlights();
  }
  function writeHash() {
    const p = new URLSearchParams();
    for (const id of viewIds) p.append('file', id);
    if (filter.q) p.set('q', filter.q);
    if (filter.regex) p.set('re', '1');
    if (filter.caseSensitive) p.set('case', '1');
    if (filter.invert) p.set('inv', '1');
    for (const h of highlights) p.append('hl', h.color + ':' + h.pattern);
    if (!logEl.classList.contains('wrap')) p.set('wrap', '0');
    const s = p.toString();
    hashState.files = viewIds.slice();
    if (s !== location.hash.replace(/^#/, '')) history.replaceState(null, '', s ? '#' + s : location.pathname + location.search);
  }
  window.addEventListener('hashchange', () => {
    const before = JSON.stringify([filter.q, filter.regex, filter.caseSensitive, filter.invert, highlights.map((h) => h.color + h.pattern)]);
    readHash();
    const after = JSON.stringify([filter.q, filter.regex, filter.caseSensitive, filter.invert, highlights.map((h) => h.color + h.pattern)]);
    if (files.size) ensureView();
    if (before !== after) rebuild();
  });

  // ---------------------------------------------------------------- controls
  const filterInput = $('filter');
  function syncFilterUi() {
    if (filterInput.value !== filter.q) filterInput.value = filter.q;
    $('filter-regex').setAttribute('aria-pressed', String(filter.regex));
    $('filter-case').setAttribute('aria-pressed', String(filter.caseSensitive));
    $('filter-invert').setAttribute('aria-pressed', String(filter.invert));
    const bad = !!(filter.error || filter.slow);
    $('filter-box').classList.toggle('invalid', bad);
    $('filter-box').classList.toggle('has-q', !!filter.q);
    const err = $('filter-error');
    err.hidden = !bad;
    err.textContent = filter.error ? 'Invalid regex' : filter.slow ? filter.slow.label : '';
    err.title = filter.error || (filter.slow && filter.slow.why) || '';
  }
  function applyFilter() {
    compileFilter();
    syncFilterUi();
    writeHash();
    rebuild();
  }
  let filterTimer = 0;
  filterInput.addEventListener('input', () => {
    filter.q = filterInput.value;
    clearTimeout(filterTimer);
    filterTimer = setTimeout(applyFilter, 120);
  });
  filterInput.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') { clearTimeout(filterTimer); filter.q = filterInput.value; applyFilter(); }
    if (ev.key === 'Escape') { filterInput.blur(); logEl.focus(); }
  });
  for (const [id, key] of [['filter-regex', 'regex'], ['filter-case', 'caseSensitive'], ['filter-invert', 'invert']]) {
    $(id).addEventListener('click', () => { filter[key] = !filter[key]; applyFilter(); });
  }

  // highlights
  let hlColor = 0;
  const swatchBox = $('hl-colors');
  for (let c = 0; c < HL_COLORS; c++) {
    const b = document.createElement('button');
    b.type = 'button'; b.className = 'swatch sw-' + c; b.dataset.color = String(c);
    b.setAttribute('role', 'radio'); b.setAttribute('aria-label', 'colour ' + (c + 1));
    b.addEventListener('click', () => { hlColor = c; renderSwatches(); });
    swatchBox.appendChild(b);
  }
  function renderSwatches() {
    for (const b of swatchBox.children) b.setAttribute('aria-checked', String(Number(b.dataset.color) === hlColor));
  }
  renderSwatches();
  function renderHighlights() {
    const ul = $('hl-list');
    ul.textContent = '';
    highlights.forEach((h, i) => {
      const li = document.createElement('li');
      const sw = document.createElement('span'); sw.className = 'sw sw-' + h.color;
      const pat = document.createElement('span'); pat.className = 'pat'; pat.textContent = h.pattern;
      if (!h.re || h.slow) { li.classList.add('bad'); pat.title = h.slow ? h.slow.why : 'invalid regular expression'; }
      const x = document.createElement('button'); x.type = 'button'; x.textContent = '\u00d7'; x.title = 'Remove';
      x.addEventListener('click', () => { highlights.splice(i, 1); renderHighlights(); writeHash(); rebuild(); });
      li.append(sw, pat, x);
      ul.appendChild(li);
    });
    const badge = $('hl-count');
    badge.hidden = highlights.length === 0;
    badge.textContent = String(highlights.length);
  }
  function addHighlight(pattern, color) {
    pattern = String(pattern || '').trim();
    if (!pattern) return;
    color = color == null ? hlColor : Number(color) % HL_COLORS;
    highlights.push(makeRule(pattern, color));
    hlColor = (color + 1) % HL_COLORS;
    renderSwatches();
    renderHighlights();
    writeHash();
    rebuild();
  }
  $('hl-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    addHighlight($('hl-input').value);
    $('hl-input').value = '';
  });

  // popovers
  const popovers = [['hl-btn', 'hl-panel'], ['settings-btn', 'settings'], ['help-btn', 'help']];
  function closePopovers(except) {
    for (const [b, p] of popovers) if (p !== except) { $(p).hidden = true; $(b).setAttribute('aria-expanded', 'false'); }
  }
  for (const [b, p] of popovers) {
    $(b).addEventListener('click', (ev) => {
      ev.stopPropagation();
      const open = $(p).hidden;
      closePopovers(p);
      $(p).hidden = !open;
      $(b).setAttribute('aria-expanded', String(open));
      if (open && p === 'hl-panel') $('hl-input').focus();
    });
    $(p).addEventListener('click', (ev) => ev.stopPropagation());
  }
  document.addEventListener('click', () => closePopovers(null));

  // pause, jump
  $('pause').addEventListener('click', () => setPaused(!paused));
  $('banner-resume').addEventListener('click', () => setPaused(false));
  $('jump').addEventListener('click', jumpToEnd);

  // wrap
  function setWrap(on, fromHash) {
    logEl.classList.toggle('wrap', on);
    logEl.classList.toggle('nowrap', !on);
    $('wrap').setAttribute('aria-pressed', String(on));
    if (!fromHash) writeHash();
    if (following) scrollToEnd();
  }
  $('wrap').addEventListener('click', () => setWrap(!logEl.classList.contains('wrap')));

  // copy / download of the visible lines
  function visibleText() {
    const out = [];
    for (const r of allRows()) {
      const e = r.tcEntry;
      if (e.kind) out.push(`-- ${e.text} --`);
      else out.push(merged ? `[${e.f}] ${e.text}` : e.text);
    }
    return out.join('\n') + (out.length ? '\n' : '');
  }
  let toastTimer = 0;
  function toast(msg) {
    const t = $('toast');
    t.textContent = msg;
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 2200);
  }
  $('copy').addEventListener('click', async () => {
    const text = visibleText();
    const n = domRows;
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const ta = document.createElement('textarea');
      ta.value = text;
      document.body.appendChild(ta);
      ta.select();
      try { document.execCommand('copy'); } catch { /* nothing more to try */ }
      ta.remove();
    }
    toast(`Copied ${fmt(n)} line${n === 1 ? '' : 's'}`);
  });
  $('download').addEventListener('click', () => {
    const blob = new Blob([visibleText()], { type: 'text/plain;charset=utf-8' });
    const a = document.createElement('a');
    const stamp = new Date().toISOString().replace(/[:]/g, '-').replace(/\..*/, '');
    a.href = URL.createObjectURL(blob);
    a.download = `${viewIds.length === 1 ? viewIds[0].replace(/[^\w.-]+/g, '_') : 'tailcast-merged'}-${stamp}.log`;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  });

  // theme
  const mql = window.matchMedia('(prefers-color-scheme: dark)');
  function effectiveTheme() { return options.theme === 'system' ? (mql.matches ? 'dark' : 'light') : options.theme; }
  function applyTheme() {
    const root = document.documentElement;
    if (options.theme === 'system') root.removeAttribute('data-theme'); else root.dataset.theme = options.theme;
    root.dataset.effectiveTheme = effectiveTheme();
    $('opt-theme').value = options.theme;
  }
  mql.addEventListener('change', applyTheme);
  $('theme').addEventListener('click', () => {
    const next = effectiveTheme() === 'dark' ? 'light' : 'dark';
    options.theme = next === (mql.matches ? 'dark' : 'light') ? 'system' : next;
    saveOptions();
    applyTheme();
  });

  // settings
  function syncSettings() {
    $('opt-rows').value = options.maxRows;
    $('opt-keep').value = options.keep;
    $('opt-backlog').value = options.backlog;
    $('opt-seq').checked = options.seq;
    $('opt-time').value = options.time;
    $('opt-theme').value = options.theme;
    logEl.classList.toggle('noseq', !options.seq);
    logEl.classList.toggle('time-relative', options.time === 'relative');
  }
  /** Why value v (as typed) cannot be setting k, or null. */
  function optionError(k, v) {
    const lim = LIMITS[k];
    if (!lim) return null;
    const n = parseCount(v);
    if (!Number.isFinite(n)) return `${lim.label}: "${String(v).slice(0, 20)}" is not a whole number. Not saved.`;
    if (n < lim.lo || n > lim.hi) return `${lim.label} must be between ${fmt(lim.lo)} and ${fmt(lim.hi)}. Not saved.`;
    if (k === 'maxRows' && n > options.keep) return `Rows on screen (${fmt(n)}) cannot exceed the lines kept in memory (${fmt(options.keep)}): raise that first. Not saved.`;
    if (k === 'keep' && n < options.maxRows) return `Lines kept in memory (${fmt(n)}) cannot be fewer than the rows on screen (${fmt(options.maxRows)}). Not saved.`;
    return null;
  }
  const OPT_FIELDS = { maxRows: 'opt-rows', keep: 'opt-keep', backlog: 'opt-backlog' };
  /** Set option k to v; a refused value is said in #opt-error, left in its field, and not stored. */
  function setOption(k, v) {
    const why = optionError(k, v);
    const err = $('opt-error');
    for (const id of Object.values(OPT_FIELDS)) $(id).removeAttribute('aria-invalid');
    if (why) {
      err.textContent = why;
      err.hidden = false;
      if (OPT_FIELDS[k]) $(OPT_FIELDS[k]).setAttribute('aria-invalid', 'true');
      return false;
    }
    err.hidden = true;
    err.textContent = '';
    if (LIMITS[k]) v = parseCount(v);
    const prevKeep = options.keep;
    options[k] = v;
    clampOptions();
    saveOptions();
    syncSettings();
    applyTheme();
    if (options.keep !== prevKeep) {
      const old = store;
      store = new Ring(options.keep);
      for (let i = Math.max(0, old.len - options.keep); i < old.len; i++) store.push(old.at(i));
    }
    if (k === 'maxRows') { trimDom(); schedule(); }
    if (k === 'time') rebuild(); // every row gains or loses its time cell
    updateUi(true);
    return true;
  }
  // A relative time ("12s ago") ages: once a second, the rows in sight are written again (only
  // those: a chunk off screen is not laid out, and is written when it is drawn again).
  setInterval(() => {
    if (options.time !== 'relative' || document.hidden) return;
    const view = logEl.getBoundingClientRect();
    for (let c = rowsEl.firstElementChild; c; c = c.nextElementSibling) {
      const r = c.getBoundingClientRect();
      if (r.bottom < view.top || r.top > view.bottom) continue;
      for (let row = c.firstElementChild; row; row = row.nextElementSibling) {
        const ts = row.firstElementChild;
        if (ts && ts.className === 'ts') { const text = fmtAgo(row.tcEntry.t); if (ts.textContent !== text) ts.textContent = text; }
      }
    }
  }, 1000);
  $('opt-rows').addEventListener('change', (ev) => setOption('maxRows', ev.target.value));
  $('opt-keep').addEventListener('change', (ev) => setOption('keep', ev.target.value));
  $('opt-backlog').addEventListener('change', (ev) => setOption('backlog', ev.target.value));
  $('opt-seq').addEventListener('change', (ev) => setOption('seq', ev.target.checked));
  $('opt-time').addEventListener('change', (ev) => setOption('time', ev.target.value));
  $('opt-theme').addEventListener('change', (ev) => setOption('theme', ev.target.value));

  // sidebar and file picking
  const sidebar = $('sidebar');
  $('sidebar-toggle').addEventListener('click', () => {
    sidebar.classList.toggle('collapsed');
    $('sidebar-toggle').setAttribute('aria-expanded', String(!sidebar.classList.contains('collapsed')));
  });
  // Up to 820 px wide the file list is a drawer over the lines: closed at first, closed again once
  // a file is picked or the lines are tapped.
  const narrow = window.matchMedia('(max-width: 820px)');
  function closeDrawer() {
    if (!narrow.matches || sidebar.classList.contains('collapsed')) return;
    sidebar.classList.add('collapsed');
    $('sidebar-toggle').setAttribute('aria-expanded', 'false');
  }
  closeDrawer();
  narrow.addEventListener('change', closeDrawer);
  $('viewer').addEventListener('pointerdown', closeDrawer);
  $('files').addEventListener('click', (ev) => {
    const li = ev.target.closest('li.file');
    if (!li) return;
    const id = li.dataset.id;
    if (ev.target.classList.contains('pick')) {
      const set = new Set(viewIds);
      if (ev.target.checked) set.add(id); else set.delete(id);
      if (set.size === 0) { ev.target.checked = true; return; }
      setView([...set]);
    } else { setView([id]); closeDrawer(); }
  });
  $('view-all').addEventListener('click', () => setView(fileOrder.slice()));

  // JSON pretty-print on click
  rowsEl.addEventListener('click', (ev) => {
    const tx = ev.target.closest('.tx');
    if (!tx || ev.target.closest('.json')) return; // a click in the pretty-printed block selects, not closes
    const row = tx.parentElement;
    if (!row.classList.contains('js')) return;
    const sel = window.getSelection();
    if (sel && !sel.isCollapsed) return;
    const open = row.querySelector('.json');
    if (open) { open.remove(); row.classList.remove('open'); return; }
    let pretty;
    try { pretty = JSON.stringify(JSON.parse(row.tcEntry.text), null, 2); } catch { row.classList.remove('js'); return; }
    const pre = document.createElement('pre');
    pre.className = 'json';
    pre.textContent = pretty;
    row.classList.add('open');
    tx.appendChild(pre); // in the text's column, beside the line number
  });

  // keyboard
  document.addEventListener('keydown', (ev) => {
    const t = ev.target;
    const typing = t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable);
    if (ev.key === 'Escape') { closePopovers(null); return; }
    if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === '/') { ev.preventDefault(); filterInput.focus(); filterInput.select(); }
    else if (ev.key === ' ' || ev.code === 'Space') { if (t && t.tagName === 'BUTTON') return; ev.preventDefault(); setPaused(!paused); }
    else if (ev.key === 'End') { ev.preventDefault(); jumpToEnd(); }
    else if (ev.key === 'w') setWrap(!logEl.classList.contains('wrap'));
    else if (ev.key === 't') $('theme').click();
    else if (ev.key === '?') $('help-btn').click();
  });

  // ---------------------------------------------------------------- test hooks
  const lineRowTexts = () => {
    const out = [];
    for (const r of allRows()) if (!r.tcEntry.kind) out.push(r.tcEntry.text);
    return out;
  };
  const storeWhere = (pred, map) => {
    const out = [];
    for (let i = 0; i < store.len; i++) { const e = store.at(i); if (pred(e)) out.push(map(e)); }
    return out;
  };
  // defineProperties, not Object.assign: the getters must stay live.
  window.tailcast = Object.defineProperties(hooks, Object.getOwnPropertyDescriptors({
    version: 1,
    get received() { return stats.received; },
    get trimmed() { return stats.trimmed; },
    get dropped() { return stats.dropped; },
    get held() { return heldCount; },
    get duplicates() { return stats.duplicates; },
    get missing() { return stats.missing; },
    get status() { return status; },
    get denied() { return denied && Object.assign({}, denied); },
    get transport() { return transport; },
    get paused() { return paused; },
    get following() { return following; },
    get epoch() { return epoch; },
    get options() { return Object.assign({}, options); },
    rows: () => domRows,
    lineRows: () => domLines,
    texts: lineRowTexts,
    timeCells: () => { const out = []; for (const r of allRows()) if (!r.tcEntry.kind) { const ts = r.querySelector('.ts'); out.push(ts ? ts.textContent : null); } return out; },
    times: (id) => storeWhere((e) => !e.kind && (id == null || e.f === id), (e) => e.t),
    notices: () => storeWhere((e) => !!e.kind, (e) => `${e.kind}: ${e.text}`),
    lines: (id) => storeWhere((e) => !e.kind && (id == null || e.f === id), (e) => e.text),
    seqs: (id) => storeWhere((e) => !e.kind && e.f === id, (e) => e.seq),
    view: () => viewIds.slice(),
    files: () => fileOrder.map((id) => { const f = files.get(id); return { id, path: f.path, exists: f.exists, size: f.size, last_seq: f.last_seq, cursor: f.cursor }; }),
    setView: (ids) => setView(Array.isArray(ids) ? ids : [ids]),
    setFilter: (o) => {
      if ('q' in o) filter.q = String(o.q);
      if ('regex' in o) filter.regex = !!o.regex;
      if ('caseSensitive' in o) filter.caseSensitive = !!o.caseSensitive;
      if ('invert' in o) filter.invert = !!o.invert;
      applyFilter();
    },
    addHighlight,
    clearHighlights: () => { highlights = []; renderHighlights(); writeHash(); rebuild(); },
    setOption,
    pause: () => setPaused(true),
    resume: () => setPaused(false),
    jumpToEnd,
    debugDropSocket: () => { const had = !!sock; dropSocket(); return had; },
  }));

  // ---------------------------------------------------------------- start
  syncSettings();
  applyTheme();
  readHash();
  rebuild(); // takes the matcher from the hash
  connectWs(false);
})();
