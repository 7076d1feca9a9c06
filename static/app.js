// @ts-check
/* tailcast dashboard: the page (the UI module; the entry point, named app.js as before because
 * the asset's URL is known to tests, benchmarks and proxies' configurations). It wires the transport (transport.js) to the views (view.js),
 * keeps the file list, the URL hash (url.js), the controls, the settings, the access screen (a
 * token, a refused Host/Origin) and the test interface (window.tailcast, below).
 *
 * Plain ES modules, no framework, no build step, no external resources; it runs under the
 * server's CSP (default-src 'self'; script-src 'self'; style-src 'self'): no inline code, no eval,
 * no style attributes in markup. Log lines are TEXT: they only ever reach the DOM through
 * textContent / text nodes, never innerHTML. All URLs are relative (api/files, ws, poll), so the
 * page works under a reverse-proxy path prefix. The wire protocol: docs/protocol.md.
 *
 * Modules: basics (formatting, token, URLs, settings), store (files, entries, ordering by read
 * time), filter (filter, highlights, the regex worker), render (rows, ANSI, JSON), view (one view's
 * flow from lines to rows), panes (the other panes of a split view), transport (WebSocket and
 * long-poll), url (the hash), app (this: the UI).
 *
 * A split view is the main view (the top bar's filter, highlights and pause, the file list) and
 * up to three more panes, each with its own file(s), filter and pause: one transport follows the
 * files of all of them, and each view keeps its own cursors, so a file shown in two panes is
 * shown whole in each.
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
 *                    in merged view, span.tx text, span.cut if truncated) or
 *                    div.row.note.note-{gap,file,restart,drop,error,conn} (a notice)
 *   #toast           transient messages
 *
 * Test interface: window.tailcast, one object (see "test interface" below):
 *   received, trimmed, dropped, held, duplicates, missing, status, transport, paused, following, denied,
 *   epoch, rows(), lineRows(), texts(), timeCells(), notices(), lines(id), seqs(id), times(id), view(),
 *   files(), options, setView(ids), setFilter({q,regex,caseSensitive,invert}), addHighlight(p,c),
 *   clearHighlights(), setOption(k,v), pause(), resume(), jumpToEnd(), debugDropSocket(),
 *   panes() (every pane, the main one first: {ids, texts, rows, lineRows, paused, q}),
 *   addPane(ids), closePane(i), paneFilter(i, q), panePause(i, paused), cspViolations, errors,
 *   past() (the whole-file panel: {open, cap, rows, first, last, hits, marked, atStart, atEnd}), pastRows()
 *   ([{n, text}] of its rows), openPast(), closePast().
 */

import {
  $, $input, apiUrl, authHeaders, clampOptions, fmt, fmtBytes, getToken, now, optionError, options,
  LIMITS, parseCount, saveOptions, setToken,
} from './basics.js';
import { makeRule } from './filter.js';
import { toggleJson } from './render.js';
import { files } from './store.js';
import { Transport } from './transport.js';
import { formatHash, HL_COLORS, parseHash, parsePanes, setHash } from './url.js';
import { View } from './view.js';
import { MAX_PANES, Pane } from './panes.js';
import { Past, PAST_CAP } from './past.js';

/** @typedef {import('./store.js').FileRec} FileRec */

/** @type {{cspViolations: string[], errors: string[]}} */
const hooks = { cspViolations: [], errors: [] };
document.addEventListener('securitypolicyviolation', (e) => {
  hooks.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
});
window.addEventListener('error', (e) => hooks.errors.push(String(e.message)));

const logEl = $('log');
/** @type {string[]} the server's order of the files */
let fileOrder = [];

// ---------------------------------------------------------------- the view
const view = new View({
  log: logEl, rows: $('rows'), pending: $('pending'), empty: $('empty'),
  received: $('count-received'), rowCount: $('count-rows'), cap: $('count-cap'), trimmed: $('count-trimmed'),
  jump: $('jump'), jumpLabel: $('jump-label'), banner: $('banner'), bannerText: $('banner-text'),
}, {
  slow: () => { syncFilterUi(); renderHighlights(); },
  paused: (p) => {
    const b = $('pause');
    b.setAttribute('aria-pressed', String(p));
    $('pause-label').textContent = p ? 'Resume' : 'Pause';
    b.title = p ? 'Resume (space): show the buffered lines' : 'Pause (space): buffer new lines without showing them';
  },
});
const flt = view.flt;

// ---------------------------------------------------------------- split view
/** @type {Pane[]} the other panes, in order (2, 3, 4) */
let panes = [];
const panesEl = $('panes');
/** Every view: the main one, then the panes'. */
const views = () => [view, ...panes.map((p) => p.view)];
/** The views showing file id. @param {string} id */
const viewsOf = (id) => views().filter((v) => v.ids.includes(id));
const paneHooks = {
  changed: () => writeHash(),
  close: (/** @type {Pane} */ p) => closePane(p),
  pick: (/** @type {Pane} */ p, /** @type {string[]} */ ids) => setPaneFiles(p, ids),
};
/** Opens a pane on these files (one, or several merged). @param {string[]} ids @param {boolean} [fromHash] */
function addPane(ids, fromHash) {
  if (panes.length >= MAX_PANES - 1) return null;
  const p = new Pane(panes.length + 2, paneHooks);
  panes.push(p);
  panesEl.appendChild(p.root);
  panesEl.classList.add('split');
  syncSettings();
  setWrap(logEl.classList.contains('wrap'), true);
  setPaneFiles(p, ids, fromHash);
  return p;
}
/** Closes a pane; the others move up. @param {Pane} p */
function closePane(p) {
  const i = panes.indexOf(p);
  if (i < 0) return;
  panes.splice(i, 1);
  p.root.remove();
  const gone = p.view.ids;
  p.view.destroy();
  // The others move up a place (the URL numbers them in order).
  panes.forEach((q, j) => q.renumber(j + 2));
  panesEl.classList.toggle('split', panes.length > 0);
  viewsChanged(gone, []);
  writeHash();
}
/** @param {Pane} p @param {string[]} ids @param {boolean} [fromHash] */
function setPaneFiles(p, ids, fromHash) {
  ids = ids.filter((id) => files.has(id));
  ids.sort((a, b) => fileOrder.indexOf(a) - fileOrder.indexOf(b));
  const old = p.view.ids.slice();
  p.view.setIds(ids);
  p.renderFiles(fileOrder);
  viewsChanged(old, ids);
  if (!fromHash) writeHash();
}
/** A view went from showing old to showing ids: files no view shows any more are let go, the
 *  transport follows every view's files, and a file that another view already followed is asked
 *  again from its backlog (the views that had it skip what they hold).
 *  @param {string[]} old @param {string[]} ids */
function viewsChanged(old, ids) {
  const shown = new Set(views().flatMap((v) => v.ids));
  for (const id of old) {
    if (ids.includes(id) || shown.has(id)) continue;
    const f = files.get(id);
    if (f) { f.cursor = null; f.subscribed = false; }
  }
  const again = ids.filter((id) => !old.includes(id) && transport.ids.includes(id));
  transport.follow([...shown]);
  for (const id of again) transport.refollow(id);
}

// ---------------------------------------------------------------- the transport
/** @type {null | {status: number, code: string, message: string}} */
let denied = null;
const transport = new Transport({ probe: () => refreshFiles(), denied: () => !!denied });

transport.on('status', (s) => {
  const el = $('status');
  el.dataset.state = s;
  $('status-label').textContent = { locked: 'token needed' }[/** @type {string} */ (s)] || s;
  el.title = {
    live: 'Live over WebSocket', 'long-poll': 'Live over HTTP long-poll (WebSocket unavailable)',
    reconnecting: 'Connection lost; reconnecting', offline: 'Server unreachable; retrying', connecting: 'Connecting',
    locked: 'The server needs a token', forbidden: 'The server refuses this address (Host or Origin)',
  }[s] || s;
  if (s === 'long-poll' && !view.ids.length) ensureView();
});
transport.on('hello', ({ files: list, reconnected }) => {
  if (reconnected) for (const v of views()) v.notice('conn', 'reconnected; resuming where it stopped');
  const hadView = view.ids.length > 0;
  if (fileOrder.join('\n') !== list.map((x) => x.id).join('\n')) setFiles(list);
  else for (const x of list) { const f = /** @type {FileRec} */ (files.get(x.id)); f.exists = x.exists !== false; f.size = x.size; f.error = x.error; if (f.cursor == null) f.last_seq = x.last_seq; renderFileItem(f); }
  if (!hadView || view.ids.some((id) => !files.has(id))) { view.ids = view.ids.filter((id) => files.has(id)); ensureView(); }
});
transport.on('epoch', () => {
  // The backlog that follows repeats lines we hold, under new numbers: drop ours (no line is
  // shown twice), and say so where they were.
  for (const v of views()) {
    const had = v.ids.filter((id) => v.cursors.has(id));
    v.dropLinesOf(had);
    v.notice('restart', 'server restarted: line numbers start again; ' +
      (had.length ? `the earlier lines of ${had.join(', ')} are replaced by its recent lines` : 'showing its recent lines'));
  }
  for (const f of files.values()) { f.cursor = null; f.subscribed = false; }
});
transport.on('lines', ({ file: f, first, lines, truncated, timeAt }) => {
  if (!lines.length) return;
  for (const v of viewsOf(f.id)) v.deliver(f, first, lines, truncated, timeAt);
  const last = first + lines.length - 1;
  if (f.cursor == null || last > f.cursor) f.cursor = last;
  if (f.cursor > (f.last_seq || 0)) f.last_seq = f.cursor;
  markActive(f);
  refreshSoon();
});
transport.on('gap', ({ file: f, from, to }) => {
  for (const v of viewsOf(f.id)) v.onGap(f, from, to);
  if (f.cursor == null || to > f.cursor) f.cursor = to;
});
transport.on('reset', ({ file: f, quiet }) => {
  // The server did not take our cursor for f (another numbering): its backlog follows.
  for (const v of viewsOf(f.id)) {
    if (!v.cursors.has(f.id)) continue;
    v.dropLinesOf([f.id]);
    if (!quiet) v.notice('restart', `${f.id}: the server numbers lines anew; its earlier lines here are replaced by its recent lines`);
  }
  f.cursor = null;
  if (!quiet) f.baseline = null;
});
transport.on('state', ({ file: f, state, message: m }) => {
  /** @type {Record<string, string>} */
  const words = { created: 'was created', truncated: 'was truncated', rotated: 'was rotated', deleted: 'was deleted', ended: 'ended (end of input)', started: 'started (command)', unavailable: 'cannot be read from the cluster now (its Redis is unreachable); lines resume when it is back', available: 'can be read from the cluster again' };
  if (state === 'exited') {
    words.exited = m && m.signal != null ? `exited on signal ${m.signal}` : `exited with status ${m && m.code != null ? m.code : '?'}`;
  }
  // An ended stream (standard input) reads no more, nor an exited command until it starts again; their lines stay.
  if (state === 'deleted' || state === 'ended' || state === 'exited') f.exists = false;
  if (state === 'created' || state === 'rotated' || state === 'truncated' || state === 'started') f.exists = true;
  // The marker says what the lines after it are: where they come from is not on every row.
  const next = /** @type {Record<string, string>} */ ({
    rotated: `: the lines below are from the new file at ${f.path || f.id} (and from the old one, renamed away, while it is still written to)`,
    truncated: ': the lines below are from its start again',
    created: `: the lines below are from the new file at ${f.path || f.id}`,
  })[state] || '';
  for (const v of viewsOf(f.id)) v.notice('file', `${f.id} ${words[state] || state}${next}`, f.id);
  renderFileItem(f);
});
transport.on('partial', ({ file: f, text }) => { for (const v of viewsOf(f.id)) v.onPartial(f, text); });
transport.on('files', ({ files: list }) => setFiles(list));
transport.on('error', ({ code, message }) => view.notice('error', `server: ${code}${message ? ': ' + message : ''}`));
transport.on('lost', () => { for (const v of views()) v.notice('conn', 'connection lost; reconnecting\u2026'); });
transport.on('denied', ({ response }) => { accessDenied(response); });

// ---------------------------------------------------------------- files
/** @param {any[]} list */
function setFiles(list) {
  const seen = new Set();
  list.forEach((x, i) => {
    seen.add(x.id);
    let f = files.get(x.id);
    if (!f) {
      f = { id: x.id, cursor: null, baseline: null, subscribed: false, activity: 0, el: null, exists: true, color: 0 };
      files.set(x.id, f);
    }
    if (f.last_seq != null && x.last_seq > f.last_seq && !viewsOf(x.id).length) f.activity = now();
    f.path = x.path; f.exists = x.exists !== false; f.size = x.size; f.last_seq = x.last_seq;
    f.node = x.node; f.error = x.error; f.remote = !!x.remote;
    f.color = i % 8;
  });
  for (const id of [...files.keys()]) if (!seen.has(id)) files.delete(id);
  fileOrder = list.map((x) => x.id);
  renderFiles();
  for (const p of panes) p.renderFiles(fileOrder);
}

/** In a cluster the list is grouped by node (in the order nodes first appear), each file
 *  named without its node. @returns {string[]} */
function listedOrder() {
  /** @type {Map<string, string[]>} */
  const byNode = new Map();
  for (const id of fileOrder) {
    const node = files.get(id)?.node || '';
    const group = byNode.get(node) || [];
    group.push(id);
    byNode.set(node, group);
  }
  return [...byNode.values()].flat();
}

function renderFiles() {
  const ul = $('files');
  ul.textContent = '';
  const clustered = fileOrder.some((id) => files.get(id)?.node);
  let lastNode = null;
  for (const id of clustered ? listedOrder() : fileOrder) {
    const f = /** @type {FileRec} */ (files.get(id));
    if (clustered && f.node !== lastNode) {
      lastNode = f.node || '';
      const head = document.createElement('li');
      head.className = 'node-group';
      head.setAttribute('role', 'presentation');
      head.textContent = lastNode || 'this node';
      ul.appendChild(head);
    }
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
    name.textContent = clustered && f.node && id.startsWith(f.node + '/') ? id.slice(f.node.length + 1) : id;
    const meta = document.createElement('span');
    meta.className = 'meta';
    li.append(cb, dot, name, meta);
    f.el = li;
    ul.appendChild(li);
    renderFileItem(f);
  }
}
/** @param {FileRec} f */
function renderFileItem(f) {
  const li = f.el;
  if (!li) return;
  const inView = view.ids.includes(f.id);
  const merged = view.merged;
  li.classList.toggle('active', inView);
  li.classList.toggle('missing', !f.exists);
  li.classList.toggle('troubled', !!f.error);
  li.classList.toggle('busy', now() - f.activity < 2500 && f.activity > 0);
  li.classList.toggle('has-color', merged && inView);
  const dot = /** @type {HTMLElement} */ (li.querySelector('.dot'));
  dot.className = 'dot' + (merged && inView ? ' dc-' + f.color : '');
  /** @type {HTMLInputElement} */ (li.querySelector('.pick')).checked = inView;
  const text = f.exists
    ? [fmtBytes(f.size), f.last_seq != null ? fmt(f.last_seq) + (f.last_seq === 1 ? ' line' : ' lines') : null, f.error ? '\u26a0 ' + f.error : null].filter(Boolean).join(' \u00b7 ')
    : '\u0000' + (f.path || '');
  if (li.tcMeta !== text) {
    li.tcMeta = text;
    const meta = /** @type {HTMLElement} */ (li.querySelector('.meta'));
    meta.textContent = '';
    if (!f.exists) {
      const m = document.createElement('span'); m.className = 'miss'; m.textContent = 'missing';
      meta.append(m, ' \u00b7 ' + (f.path || ''));
    } else meta.textContent = text;
  }
  li.title = [f.node ? `${f.id} on node ${f.node}: ${f.path || ''}` : f.path || f.id, f.error].filter(Boolean).join('\n');
}
/** @param {FileRec} f */
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
        for (const x of list) {
          const f = /** @type {FileRec} */ (files.get(x.id));
          f.exists = x.exists !== false; f.size = x.size;
          if (!viewsOf(x.id).length) f.last_seq = x.last_seq;
          renderFileItem(f);
        }
      }
    }
    return true;
  } catch { return false; }
}
setInterval(() => { if (!document.hidden && transport.status !== 'offline' && !denied) refreshFiles(); }, 3000);
// Sizes of the files being watched go stale as lines arrive: refresh soon, at most every 2 s.
let lastRefresh = 0, refreshTimer = 0;
function refreshSoon() {
  if (refreshTimer) return;
  refreshTimer = window.setTimeout(() => { refreshTimer = 0; lastRefresh = now(); refreshFiles(); }, Math.max(300, 2000 - (now() - lastRefresh)));
}

/** The files the hash names (that exist), else the first file; and the hash's other panes. */
function ensureView() {
  const want = hashFiles.filter((id) => files.has(id));
  if (want.length === 0 && fileOrder.length) want.push(fileOrder[0]);
  if (want.join('\n') !== view.ids.join('\n')) setView(want, true);
  if (!files.size) return;
  const wanted = hashPanes.map((s) => ({ s, ids: s.files.filter((id) => files.has(id)) })).filter((x) => x.ids.length);
  while (panes.length > wanted.length) closePane(panes[panes.length - 1]);
  wanted.forEach(({ s, ids }, i) => {
    const p = panes[i] || addPane(ids, true);
    if (!p) return;
    const before = p.view.flt.signature();
    p.setFilterState(s);
    if (ids.join('\n') !== p.view.ids.join('\n')) setPaneFiles(p, ids, true);
    else if (before !== p.view.flt.signature()) p.view.rebuild();
  });
}

/** Show these files (one, or several merged). @param {string[]} ids @param {boolean} [fromHash] */
function setView(ids, fromHash) {
  ids = ids.filter((id) => files.has(id));
  ids.sort((a, b) => fileOrder.indexOf(a) - fileOrder.indexOf(b));
  const old = view.ids.slice();
  view.setIds(ids);
  const title = $('view-title');
  if (ids.length === 1) { const f = /** @type {FileRec} */ (files.get(ids[0])); title.textContent = f.path || f.id; title.title = f.path || f.id; }
  else if (ids.length > 1) { title.textContent = `${ids.length} files merged`; title.title = ids.join(', '); }
  else { title.textContent = ''; title.title = ''; }
  document.title = ids.length === 1 ? `${ids[0]} \u00b7 tailcast` : ids.length ? `${ids.length} files \u00b7 tailcast` : 'tailcast';
  for (const f of files.values()) renderFileItem(f);
  viewsChanged(old, ids);
  if (!fromHash) writeHash();
}

// ---------------------------------------------------------------- access (token, Host, Origin)
// A 401 (no or wrong token) or 403 (a Host or Origin the server refuses) stops the connection
// attempts and shows #access instead of an empty page: a token field, or what the operator must
// set. The answer's JSON body ({error, message}, src/http/error.rs) says which.
/** @param {Response} r */
async function accessDenied(r) {
  let body = {};
  try { body = await r.json(); } catch { /* not JSON: a proxy's page */ }
  const hadToken = !!getToken();
  denied = { status: r.status, code: /** @type {any} */ (body).error || '', message: /** @type {any} */ (body).message || '' };
  transport.halt();
  transport.setStatus(r.status === 401 ? 'locked' : 'forbidden');
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
    $input('access-token').value = '';
    $input('access-token').focus();
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
  transport.retry();
}
$('access-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const t = $input('access-token').value.trim();
  if (!t) { $('access-error').hidden = false; $('access-error').textContent = 'Enter the token.'; return; }
  setToken(t);
  $input('access-token').value = '';
  accessRetry();
});
$('access-retry').addEventListener('click', accessRetry);

// ---------------------------------------------------------------- URL hash
/** @type {string[]} the files the hash asks for */
let hashFiles = [];
/** @type {import('./url.js').HashState[]} the other panes the hash asks for */
let hashPanes = [];
function readHash() {
  const h = parseHash(location.hash);
  hashFiles = h.files;
  hashPanes = parsePanes(location.hash);
  const f = flt.filter;
  f.q = h.q; f.regex = h.regex; f.caseSensitive = h.caseSensitive; f.invert = h.invert;
  flt.highlights = h.highlights.map((x) => makeRule(x.pattern, x.color));
  if (h.wrap != null) setWrap(h.wrap, true);
  flt.compile();
  syncFilterUi();
  renderHighlights();
}
function writeHash() {
  const f = flt.filter;
  hashFiles = view.ids.slice();
  hashPanes = panes.map((p) => p.state());
  setHash(formatHash({
    files: view.ids, q: f.q, regex: f.regex, caseSensitive: f.caseSensitive, invert: f.invert,
    highlights: flt.highlights, wrap: logEl.classList.contains('wrap'),
  }, hashPanes));
}
window.addEventListener('hashchange', () => {
  const before = flt.signature();
  readHash();
  if (files.size) ensureView();
  if (before !== flt.signature()) view.rebuild();
});

// ---------------------------------------------------------------- controls
const filterInput = $input('filter');
function syncFilterUi() {
  const f = flt.filter;
  if (filterInput.value !== f.q) filterInput.value = f.q;
  $('filter-regex').setAttribute('aria-pressed', String(f.regex));
  $('filter-case').setAttribute('aria-pressed', String(f.caseSensitive));
  $('filter-invert').setAttribute('aria-pressed', String(f.invert));
  const bad = !!(f.error || f.slow);
  $('filter-box').classList.toggle('invalid', bad);
  $('filter-box').classList.toggle('has-q', !!f.q);
  const err = $('filter-error');
  err.hidden = !bad;
  err.textContent = f.error ? 'Invalid regex' : f.slow ? f.slow.label : '';
  err.title = f.error || (f.slow && f.slow.why) || '';
}
function applyFilter() {
  flt.compile();
  syncFilterUi();
  writeHash();
  view.rebuild();
}
let filterTimer = 0;
filterInput.addEventListener('input', () => {
  flt.filter.q = filterInput.value;
  clearTimeout(filterTimer);
  filterTimer = window.setTimeout(applyFilter, 120);
});
filterInput.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter') { clearTimeout(filterTimer); flt.filter.q = filterInput.value; applyFilter(); }
  if (ev.key === 'Escape') { filterInput.blur(); logEl.focus(); }
});
for (const [id, key] of /** @type {[string, 'regex' | 'caseSensitive' | 'invert'][]} */ ([['filter-regex', 'regex'], ['filter-case', 'caseSensitive'], ['filter-invert', 'invert']])) {
  $(id).addEventListener('click', () => { flt.filter[key] = !flt.filter[key]; applyFilter(); });
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
  for (const b of /** @type {HTMLCollectionOf<HTMLElement>} */ (swatchBox.children)) b.setAttribute('aria-checked', String(Number(b.dataset.color) === hlColor));
}
renderSwatches();
function renderHighlights() {
  const ul = $('hl-list');
  ul.textContent = '';
  flt.highlights.forEach((h, i) => {
    const li = document.createElement('li');
    const sw = document.createElement('span'); sw.className = 'sw sw-' + h.color;
    const pat = document.createElement('span'); pat.className = 'pat'; pat.textContent = h.pattern;
    if (!h.re || h.slow) { li.classList.add('bad'); pat.title = h.slow ? h.slow.why : 'invalid regular expression'; }
    const x = document.createElement('button'); x.type = 'button'; x.textContent = '\u00d7'; x.title = 'Remove';
    x.addEventListener('click', () => { flt.highlights.splice(i, 1); renderHighlights(); writeHash(); view.rebuild(); });
    li.append(sw, pat, x);
    ul.appendChild(li);
  });
  const badge = $('hl-count');
  badge.hidden = flt.highlights.length === 0;
  badge.textContent = String(flt.highlights.length);
}
/** @param {unknown} pattern @param {unknown} [color] */
function addHighlight(pattern, color) {
  const p = String(pattern || '').trim();
  if (!p) return;
  const c = color == null ? hlColor : Number(color) % HL_COLORS;
  flt.highlights.push(makeRule(p, c));
  hlColor = (c + 1) % HL_COLORS;
  renderSwatches();
  renderHighlights();
  writeHash();
  view.rebuild();
}
$('hl-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  addHighlight($input('hl-input').value);
  $input('hl-input').value = '';
});

// popovers
const popovers = [['hl-btn', 'hl-panel'], ['settings-btn', 'settings'], ['help-btn', 'help']];
/** @param {string | null} except */
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
$('pause').addEventListener('click', () => view.setPaused(!view.paused));
$('banner-resume').addEventListener('click', () => view.setPaused(false));
$('jump').addEventListener('click', () => view.jumpToEnd());

// wrap
/** @param {boolean} on @param {boolean} [fromHash] */
function setWrap(on, fromHash) {
  for (const l of [logEl, ...panes.map((p) => p.log)]) { l.classList.toggle('wrap', on); l.classList.toggle('nowrap', !on); }
  $('wrap').setAttribute('aria-pressed', String(on));
  if (!fromHash) writeHash();
  for (const v of views()) if (v.following) v.scrollToEnd();
}
$('wrap').addEventListener('click', () => setWrap(!logEl.classList.contains('wrap')));

// copy / download of the visible lines
let toastTimer = 0;
/** @param {string} msg */
function toast(msg) {
  const t = $('toast');
  t.textContent = msg;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = window.setTimeout(() => { t.hidden = true; }, 2200);
}
$('copy').addEventListener('click', async () => {
  const text = view.visibleText();
  const n = view.rowsDom.rows;
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
  const blob = new Blob([view.visibleText()], { type: 'text/plain;charset=utf-8' });
  const a = document.createElement('a');
  const stamp = new Date().toISOString().replace(/[:]/g, '-').replace(/\..*/, '');
  a.href = URL.createObjectURL(blob);
  a.download = `${view.ids.length === 1 ? view.ids[0].replace(/[^\w.-]+/g, '_') : 'tailcast-merged'}-${stamp}.log`;
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
  $input('opt-theme').value = options.theme;
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
  $input('opt-rows').value = String(options.maxRows);
  $input('opt-keep').value = String(options.keep);
  $input('opt-backlog').value = String(options.backlog);
  $input('opt-seq').checked = options.seq;
  $input('opt-time').value = options.time;
  $input('opt-theme').value = options.theme;
  for (const l of [logEl, ...panes.map((p) => p.log)]) {
    l.classList.toggle('noseq', !options.seq);
    l.classList.toggle('time-relative', options.time === 'relative');
  }
}
/** @type {Record<string, string>} */
const OPT_FIELDS = { maxRows: 'opt-rows', keep: 'opt-keep', backlog: 'opt-backlog' };
/** Set option k to v; a refused value is said in #opt-error, left in its field, and not stored.
 *  @param {string} k @param {unknown} v */
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
  /** @type {Record<string, unknown>} */ (/** @type {unknown} */ (options))[k] = v;
  clampOptions();
  saveOptions();
  syncSettings();
  applyTheme();
  for (const v of views()) {
    if (options.keep !== prevKeep) v.resize();
    if (k === 'maxRows') { v.trimDom(); v.schedule(); }
    if (k === 'time') v.rebuild(); // every row gains or loses its time cell
    v.updateUi(true);
  }
  return true;
}
$('opt-rows').addEventListener('change', () => setOption('maxRows', $input('opt-rows').value));
$('opt-keep').addEventListener('change', () => setOption('keep', $input('opt-keep').value));
$('opt-backlog').addEventListener('change', () => setOption('backlog', $input('opt-backlog').value));
$('opt-seq').addEventListener('change', () => setOption('seq', $input('opt-seq').checked));
$('opt-time').addEventListener('change', () => setOption('time', $input('opt-time').value));
$('opt-theme').addEventListener('change', () => setOption('theme', $input('opt-theme').value));
// A relative time ("12s ago") ages: once a second, the rows in sight are written again.
setInterval(() => {
  if (options.time !== 'relative' || document.hidden) return;
  for (const v of views()) v.rowsDom.ageTimes(v.els.log.getBoundingClientRect());
}, 1000);

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
  const target = /** @type {HTMLInputElement} */ (ev.target);
  const li = /** @type {HTMLElement | null} */ (target.closest('li.file'));
  if (!li) return;
  const id = /** @type {string} */ (li.dataset.id);
  if (target.classList.contains('pick')) {
    const set = new Set(view.ids);
    if (target.checked) set.add(id); else set.delete(id);
    if (set.size === 0) { target.checked = true; return; }
    setView([...set]);
  } else { setView([id]); closeDrawer(); }
});
$('view-all').addEventListener('click', () => setView(fileOrder.slice()));
$('split-add').addEventListener('click', () => {
  // The next file after the last pane's (or the main view's), so that a new pane shows another file.
  const last = panes.length ? panes[panes.length - 1].view.ids : view.ids;
  const i = last.length ? fileOrder.indexOf(last[last.length - 1]) : -1;
  const id = fileOrder[(i + 1) % Math.max(1, fileOrder.length)];
  if (id != null && addPane([id])) closeDrawer();
});

// JSON pretty-print on click
panesEl.addEventListener('click', toggleJson);

// ---------------------------------------------------------------- the whole file (past.js)
/** True when a file of the view has a past on disk this server reads: a file of this node (not
 *  standard input, a command, or another node's file in a cluster). */
function viewHasDisk() {
  return view.ids.some((id) => { const f = files.get(id); return !!f && !f.remote && !!f.path && f.path.startsWith('/'); });
}
const past = new Past({ closed: () => { $('older').hidden = !(logEl.scrollTop === 0 && viewHasDisk()); logEl.focus({ preventScroll: true }); } });
/** The oldest seq the main view holds of file id, or null. @param {string} id */
function oldestSeq(id) {
  for (let i = 0; i < view.lines.len; i++) { const e = view.lines.at(i); if (!e.kind && e.f === id) return e.seq; }
  return null;
}
function openPast() {
  if (!viewHasDisk()) return;
  $('older').hidden = true;
  void past.open(view.ids, oldestSeq(view.ids[0]));
}
$('whole').addEventListener('click', openPast);
$('older').addEventListener('click', openPast);
// At the top of the live lines, the way further up: the file on disk. Scrolling up once more
// there opens it, as if the lines went on (a tap on the button does it on a touch screen).
logEl.addEventListener('scroll', () => { $('older').hidden = past.isOpen || logEl.scrollTop > 0 || !viewHasDisk() || view.rowsDom.lines === 0; });
// Only files with a past on disk here offer it.
setInterval(() => {
  const disk = viewHasDisk();
  /** @type {HTMLButtonElement} */ ($('whole')).disabled = !disk;
  if (!disk) $('older').hidden = true;
}, 500);
logEl.addEventListener('wheel', (ev) => {
  if (ev.deltaY < 0 && logEl.scrollTop === 0 && !$('older').hidden && !past.isOpen) openPast();
}, { passive: true });

// keyboard
document.addEventListener('keydown', (ev) => {
  const t = /** @type {HTMLElement | null} */ (ev.target);
  const typing = t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable);
  if (ev.key === 'Escape' && past.isOpen && !document.querySelector('.popover:not([hidden])')) { past.close(); return; }
  if (ev.key === 'Escape') { closePopovers(null); return; }
  if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (ev.key === '/') { ev.preventDefault(); filterInput.focus(); filterInput.select(); }
  else if (ev.key === ' ' || ev.code === 'Space') { if (t && t.tagName === 'BUTTON') return; ev.preventDefault(); view.setPaused(!view.paused); }
  else if (ev.key === 'End') { ev.preventDefault(); view.jumpToEnd(); }
  else if (ev.key === 'w') setWrap(!logEl.classList.contains('wrap'));
  else if (ev.key === 't') $('theme').click();
  else if (ev.key === '?') $('help-btn').click();
  else if (ev.key === 'h') { if (past.isOpen) past.close(); else openPast(); }
});

// ---------------------------------------------------------------- test interface
// One object, window.tailcast: what the browser checks (tests/browser) read and do. Getters,
// so that it stays live; nothing else of the page is reachable from outside the modules.
/** @param {(e: import('./render.js').Entry) => boolean} pred @template T @param {(e: import('./render.js').Entry) => T} map */
const storeWhere = (pred, map) => {
  const out = [];
  for (let i = 0; i < view.lines.len; i++) { const e = view.lines.at(i); if (pred(e)) out.push(map(e)); }
  return out;
};
const lineRows = () => [...view.rowsDom.all()].filter((r) => !r.tcEntry.kind);
/** @type {any} */ (window).tailcast = Object.defineProperties(hooks, Object.getOwnPropertyDescriptors({
  version: 1,
  get received() { return view.stats.received; },
  get trimmed() { return view.stats.trimmed; },
  get dropped() { return view.stats.dropped; },
  get held() { return view.heldCount; },
  get duplicates() { return view.stats.duplicates; },
  get missing() { return view.stats.missing; },
  get status() { return transport.status; },
  get denied() { return denied && Object.assign({}, denied); },
  get transport() { return transport.kind; },
  get paused() { return view.paused; },
  get following() { return view.following; },
  get epoch() { return transport.epoch; },
  get options() { return Object.assign({}, options); },
  rows: () => view.rowsDom.rows,
  lineRows: () => view.rowsDom.lines,
  texts: () => lineRows().map((r) => r.tcEntry.text),
  timeCells: () => lineRows().map((r) => { const ts = r.querySelector('.ts'); return ts ? ts.textContent : null; }),
  notices: () => storeWhere((e) => !!e.kind, (e) => `${e.kind}: ${e.text}`),
  lines: (/** @type {string | undefined} */ id) => storeWhere((e) => !e.kind && (id == null || e.f === id), (e) => e.text),
  seqs: (/** @type {string} */ id) => storeWhere((e) => !e.kind && e.f === id, (e) => e.seq),
  times: (/** @type {string | undefined} */ id) => storeWhere((e) => !e.kind && (id == null || e.f === id), (e) => e.t),
  view: () => view.ids.slice(),
  files: () => fileOrder.map((id) => { const f = /** @type {FileRec} */ (files.get(id)); return { id, path: f.path, exists: f.exists, size: f.size, last_seq: f.last_seq, cursor: f.cursor }; }),
  setView: (/** @type {string | string[]} */ ids) => setView(Array.isArray(ids) ? ids : [ids]),
  setFilter: (/** @type {{q?: string, regex?: boolean, caseSensitive?: boolean, invert?: boolean}} */ o) => {
    const f = flt.filter;
    if ('q' in o) f.q = String(o.q);
    if ('regex' in o) f.regex = !!o.regex;
    if ('caseSensitive' in o) f.caseSensitive = !!o.caseSensitive;
    if ('invert' in o) f.invert = !!o.invert;
    applyFilter();
  },
  addHighlight,
  clearHighlights: () => { flt.highlights = []; renderHighlights(); writeHash(); view.rebuild(); },
  setOption,
  pause: () => view.setPaused(true),
  resume: () => view.setPaused(false),
  jumpToEnd: () => view.jumpToEnd(),
  debugDropSocket: () => transport.dropSocket(),
  panes: () => views().map((v) => ({
    ids: v.ids.slice(), rows: v.rowsDom.rows, lineRows: v.rowsDom.lines, paused: v.paused, q: v.flt.filter.q,
    texts: [...v.rowsDom.all()].filter((r) => !r.tcEntry.kind).map((r) => r.tcEntry.text),
  })),
  addPane: (/** @type {string[]} */ ids) => !!addPane(ids),
  closePane: (/** @type {number} */ i) => { const p = panes[i - 1]; if (p) closePane(p); },
  paneFilter: (/** @type {number} */ i, /** @type {string} */ q) => { const p = panes[i - 1]; if (p) { p.filterInput.value = q; p.applyFilter(); } },
  panePause: (/** @type {number} */ i, /** @type {boolean} */ on) => { const v = views()[i]; if (v) v.setPaused(on); },
  past: () => {
    const rows = document.querySelectorAll('#past-rows .past-row');
    const text = (/** @type {Element | undefined} */ r) => (r ? r.querySelector('.past-text')?.textContent ?? null : null);
    return {
      open: past.isOpen, cap: PAST_CAP, rows: rows.length, first: text(rows[0]), last: text(rows[rows.length - 1]),
      hits: [...document.querySelectorAll('#past-hits .past-hit .past-text')].map((x) => x.textContent),
      marked: [...document.querySelectorAll('#past-rows .past-hit-row .past-text')].map((x) => x.textContent),
      atStart: !past.before, atEnd: !!document.querySelector('#past-rows .past-end'),
    };
  },
  pastRows: () => [...document.querySelectorAll('#past-rows .past-row')].map((r) => ({
    n: r.querySelector('.past-n')?.textContent ?? '', text: r.querySelector('.past-text')?.textContent ?? '',
  })),
  openPast,
  closePast: () => past.close(),
}));

// ---------------------------------------------------------------- start
syncSettings();
applyTheme();
readHash();
view.rebuild(); // takes the matcher from the hash
transport.start();
