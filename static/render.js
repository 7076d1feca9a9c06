// @ts-check
/* tailcast dashboard: rows in the DOM. ANSI colours parsed into styled segments, one row per
 * entry (time, seq, file label, text with marks, truncated mark), rows grouped in chunks that
 * the browser skips when off screen (content-visibility), trimmed from the top, and the JSON
 * pretty-print of a row. Log text reaches the DOM only through textContent / text nodes, never
 * innerHTML. It does not decide which entries are shown: the view (view.js) does. */

import { fmtAgo, fmtClock, fmtFull, options } from './basics.js';

/** @typedef {{t: string, c: string}} Seg  a piece of text and its ANSI classes */
/** A line or a notice, as stored (store.js) and drawn.
 *  @typedef {{n: number, f: string | null, seq: number, t: number, text: string, segs: Seg[] | null,
 *             trunc: boolean, kind: string | null, hit?: boolean, found?: (number[] | undefined)[] | null}} Entry */
/** @typedef {HTMLDivElement & {tcEntry: Entry}} Row */
/** [start, end, class] of a mark in a line's text. @typedef {[number, number, string]} Range */

const CSI = /\x1b\[([0-9;:?]*)([@-~])/g;
/** Split a raw line into plain text and styled segments (SGR 0,1,22,30-37,39,40-47,49,90-97,100-107).
 *  @param {string} raw @returns {{text: string, segs: Seg[] | null}} */
export function parseAnsi(raw) {
  if (raw.indexOf('\x1b') === -1) return { text: raw, segs: null };
  /** @type {Seg[]} */
  const segs = [];
  let fg = -1, bg = -1, bold = false, last = 0, text = '', m;
  const cls = () => (fg >= 0 ? 'a-f' + fg + ' ' : '') + (bg >= 0 ? 'a-b' + bg + ' ' : '') + (bold ? 'a-bold' : '');
  const add = (/** @type {string} */ t) => { if (t) { segs.push({ t, c: cls().trim() }); text += t; } };
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

/** The entry's text into el: its ANSI segments, with the ranges marked. @param {HTMLElement} el @param {Entry} e @param {Range[]} ranges */
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
      /** @type {Node} */
      let node = document.createTextNode(t.slice(s, end));
      if (seg.c) { const sp = document.createElement('span'); sp.className = seg.c; sp.appendChild(node); node = sp; }
      if (mark) { const mk = document.createElement('mark'); mk.className = mark; mk.appendChild(node); node = mk; }
      el.appendChild(node);
      s = end;
    }
    pos += t.length;
  }
}

/** What a row needs to know of its view.
 *  @typedef {{merged: boolean, fileOf: (id: string) => ({color: number, path?: string} | undefined),
 *             marks: ((e: Entry) => {ranges: Range[], rowHl: number}) | null}} RowContext */

/** The row of an entry. @param {Entry} e @param {RowContext} ctx @returns {Row} */
export function makeRow(e, ctx) {
  const row = /** @type {Row} */ (document.createElement('div'));
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
  ln.textContent = String(e.seq);
  row.appendChild(ln);
  if (ctx.merged && e.f != null) {
    const fl = document.createElement('span');
    const f = ctx.fileOf(e.f);
    fl.className = 'fl fc-' + (f ? f.color : 0);
    fl.textContent = e.f;
    fl.title = (f && f.path) || e.f;
    row.appendChild(fl);
  }
  const tx = document.createElement('span');
  tx.className = 'tx';
  const { ranges, rowHl } = ctx.marks ? ctx.marks(e) : { ranges: [], rowHl: -1 };
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

// Rows live in chunks of CHUNK rows (div.chunk > div.row). Chunks carry content-visibility:auto,
// so the browser skips layout and paint of the off-screen ones; trimming drops whole chunks.
const CHUNK = 64;

/** The rows of one view's #rows element, counted. */
export class Rows {
  /** @param {HTMLElement} el */
  constructor(el) {
    this.el = el;
    this.rows = 0;  // rows in the DOM
    this.lines = 0; // of which line rows (not notices)
  }
  clear() { this.el.textContent = ''; this.rows = 0; this.lines = 0; }
  /** @param {Row[]} list */
  append(list) {
    let last = this.el.lastElementChild;
    let i = 0;
    while (i < list.length) {
      if (!last || last.childElementCount >= CHUNK) {
        last = document.createElement('div');
        last.className = 'chunk';
        this.el.appendChild(last);
      }
      const frag = document.createDocumentFragment();
      for (let room = CHUNK - last.childElementCount; room > 0 && i < list.length; room--, i++) {
        const r = list[i];
        frag.appendChild(r);
        this.rows++;
        if (!r.tcEntry.kind) this.lines++;
      }
      last.appendChild(frag);
    }
  }
  /** Every row, top to bottom. @returns {Generator<Row>} */
  *all() {
    for (let c = this.el.firstElementChild; c; c = c.nextElementSibling) {
      for (let r = c.firstElementChild; r; r = r.nextElementSibling) yield /** @type {Row} */ (r);
    }
  }
  /** Drop rows from the top until at most max remain; returns the line rows dropped. @param {number} max */
  trim(max) {
    let excess = this.rows - max;
    if (excess <= 0) return 0;
    let lines = 0;
    while (excess > 0) {
      const c = /** @type {Element} */ (this.el.firstElementChild);
      const n = c.childElementCount;
      if (n <= excess) {
        for (let r = c.firstElementChild; r; r = r.nextElementSibling) if (!(/** @type {Row} */ (r)).tcEntry.kind) lines++;
        c.remove();
        excess -= n; this.rows -= n;
      } else {
        for (; excess > 0; excess--, this.rows--) {
          const r = /** @type {Row} */ (c.firstElementChild);
          if (!r.tcEntry.kind) lines++;
          r.remove();
        }
      }
    }
    this.lines -= lines;
    return lines;
  }
  /** Rewrites the relative times of the rows in sight (those only: a chunk off screen is not laid
   *  out, and is written when it is drawn again). @param {DOMRect} view */
  ageTimes(view) {
    for (let c = this.el.firstElementChild; c; c = c.nextElementSibling) {
      const r = c.getBoundingClientRect();
      if (r.bottom < view.top || r.top > view.bottom) continue;
      for (let row = c.firstElementChild; row; row = row.nextElementSibling) {
        const ts = row.firstElementChild;
        if (ts && ts.className === 'ts') {
          const text = fmtAgo((/** @type {Row} */ (row)).tcEntry.t);
          if (ts.textContent !== text) ts.textContent = text;
        }
      }
    }
  }
}

/** Opens (or closes) the pretty-printed JSON of the row clicked. @param {MouseEvent} ev */
export function toggleJson(ev) {
  const target = /** @type {Element} */ (ev.target);
  const tx = target.closest('.tx');
  if (!tx || target.closest('.json')) return; // a click in the pretty-printed block selects, not closes
  const row = /** @type {Row} */ (tx.parentElement);
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
}
