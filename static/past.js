// @ts-check
/* tailcast dashboard: the whole file. A panel over the live view that reads a file's past from
 * disk (api/page): the lines above the oldest one the live view holds, then further up to line 1
 * of the oldest rotated generation, and back down, page by page, with the DOM capped (rows far
 * from where the reader is are dropped and fetched again when scrolled back to). And a search of
 * the whole file and its rotated generations (api/search), hits listed as they stream in, each
 * opening its place with the lines around it. Log text reaches the DOM only through textContent.
 * It knows nothing of the live view but the file ids and the oldest seq it is given. */

import { $, apiUrl, authHeaders, fmt, fmtBytes } from './basics.js';

/** Lines per page request. */
const PAGE = 500;
/** Rows in the panel's DOM at most. */
export const PAST_CAP = 2500;
/** Hits one search lists at most. */
const MAX_HITS = 500;

/** A line as api/page and api/search give it.
 *  @typedef {{file?: string, gen: string, offset: number, line: number | null, seq?: number, text: string, truncated?: boolean}} DiskLine */
/** @typedef {{lines: DiskLine[], before: string | null, after: string | null}} PageAnswer */
/** @typedef {HTMLDivElement & {tcLine?: DiskLine}} PastRow */

export class Past {
  /** @param {{closed: () => void}} hooks */
  constructor(hooks) {
    this.hooks = hooks;
    this.root = $('past');
    this.rowsEl = $('past-rows');
    this.hitsEl = $('past-hits');
    this.status = $('past-status');
    this.where = $('past-where');
    this.fileSel = /** @type {HTMLSelectElement} */ ($('past-file'));
    this.query = /** @type {HTMLInputElement} */ ($('past-q'));
    this.regex = /** @type {HTMLInputElement} */ ($('past-regex'));
    this.caseSens = /** @type {HTMLInputElement} */ ($('past-case'));
    /** @type {string[]} */
    this.ids = [];
    this.id = '';
    /** what `before=` / `after=` fetch next (null: nothing more that way) @type {string | null} */
    this.before = null;
    /** @type {string | null} */
    this.after = null;
    this.loading = false;
    /** generation key -> file name, per file @type {Map<string, string>} */
    this.names = new Map();
    /** @type {AbortController | null} */
    this.searching = null;
    this.lastTop = 0;
    /** bumped by every jump (show, goTo, close): a page asked for before it is dropped */
    this.epoch = 0;
    this.rowsEl.addEventListener('scroll', () => this.onScroll());
    $('past-close').addEventListener('click', () => this.close());
    $('past-search').addEventListener('submit', (ev) => { ev.preventDefault(); void this.search(); });
    this.fileSel.addEventListener('change', () => { void this.show(this.fileSel.value, null); });
  }

  get isOpen() { return !this.root.hidden; }

  /** Opens the panel on `ids` (the first shown), at the lines above seq `beforeSeq` of the
   *  first (or at the file's end when null). @param {string[]} ids @param {number | null} beforeSeq */
  async open(ids, beforeSeq) {
    this.ids = ids.slice();
    this.fileSel.replaceChildren(...ids.map((id) => { const o = document.createElement('option'); o.value = id; o.textContent = id; return o; }));
    this.fileSel.hidden = ids.length < 2;
    this.root.hidden = false;
    this.hitsEl.replaceChildren();
    this.hitsEl.hidden = true;
    await this.show(ids[0], beforeSeq);
    this.rowsEl.focus({ preventScroll: true });
  }

  close() {
    if (!this.isOpen) return;
    this.epoch++;
    this.searching?.abort();
    this.searching = null;
    this.root.hidden = true;
    this.rowsEl.replaceChildren();
    this.hooks.closed();
  }

  /** @param {string} id @param {number | null} beforeSeq */
  async show(id, beforeSeq) {
    const epoch = ++this.epoch;
    this.loading = true;
    this.id = id;
    this.fileSel.value = id;
    this.rowsEl.replaceChildren();
    this.before = null;
    this.after = null;
    try {
      await this.loadNames();
      let page = beforeSeq != null ? await this.page({ before_seq: beforeSeq }).catch(() => null) : null;
      // A seq the server can no longer place (or none): the newest lines on disk.
      if (!page) page = await this.page({});
      if (epoch !== this.epoch) return;
      this.before = page.before;
      this.after = page.after;
      this.append(page.lines);
      this.scrollTo(this.rowsEl.scrollHeight);
      this.say();
    } catch (e) {
      // A stream (standard input, a command) has no past on disk; the server says so.
      if (epoch === this.epoch) this.say(String(e instanceof Error ? e.message : e));
    } finally {
      if (epoch === this.epoch) this.loading = false;
    }
  }

  async loadNames() {
    this.names = new Map();
    try {
      const res = await fetch(apiUrl('api/generations', { file: this.id }), { headers: authHeaders() });
      if (!res.ok) return;
      const body = await res.json();
      for (const g of body.generations || []) this.names.set(g.gen, g.name);
    } catch { /* names are a nicety */ }
  }

  /** One page of the current file. @param {Record<string, string | number>} params @returns {Promise<PageAnswer>} */
  async page(params) {
    const res = await fetch(apiUrl('api/page', { file: this.id, max: PAGE, ...params }), { headers: authHeaders() });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.message || `HTTP ${res.status}`);
    return body;
  }

  /** Loads the page above when the reader scrolls up near the top, the page below when they
   *  scroll down near the bottom (the panel's own moves of the scroll position load nothing). */
  onScroll() {
    const el = this.rowsEl;
    const dir = Math.sign(el.scrollTop - this.lastTop);
    this.lastTop = el.scrollTop;
    if (this.loading) return;
    if (dir < 0 && el.scrollTop < el.clientHeight && this.before) void this.up();
    else if (dir > 0 && el.scrollHeight - el.scrollTop - el.clientHeight < el.clientHeight && this.after) void this.down();
  }

  /** Sets the scroll position without loading anything. @param {number} top */
  scrollTo(top) {
    this.rowsEl.scrollTop = top;
    this.lastTop = this.rowsEl.scrollTop;
  }

  /** The page above what is shown. */
  async up() {
    if (!this.before || this.loading) return;
    const epoch = this.epoch;
    this.loading = true;
    try {
      const page = await this.page({ before: this.before });
      // The reader jumped elsewhere meanwhile: this page belongs to nothing on screen.
      if (epoch !== this.epoch) return;
      const el = this.rowsEl;
      const h0 = el.scrollHeight, t0 = el.scrollTop;
      this.prepend(page.lines);
      this.before = page.lines.length ? page.before : null;
      this.scrollTo(t0 + (el.scrollHeight - h0));
      this.trim('bottom');
    } catch (e) { if (epoch === this.epoch) this.say(String(e instanceof Error ? e.message : e)); return; } finally { if (epoch === this.epoch) this.loading = false; }
    if (epoch === this.epoch) this.say();
  }

  /** The page below what is shown. */
  async down() {
    if (!this.after || this.loading) return;
    const epoch = this.epoch;
    this.loading = true;
    try {
      const page = await this.page({ after: this.after });
      if (epoch !== this.epoch) return;
      this.append(page.lines);
      // At the end of the file at the path the answer is empty (its next lines are live).
      this.after = page.lines.length ? page.after : null;
      if (!page.lines.length) this.atEnd();
      this.trim('top');
    } catch (e) { if (epoch === this.epoch) this.say(String(e instanceof Error ? e.message : e)); return; } finally { if (epoch === this.epoch) this.loading = false; }
    if (epoch === this.epoch) this.say();
  }

  atEnd() {
    if (this.rowsEl.lastElementChild?.classList.contains('past-end')) return;
    const end = document.createElement('div');
    end.className = 'past-end';
    end.textContent = 'End of the file: its next lines are live. ';
    const back = document.createElement('button');
    back.type = 'button'; back.className = 'btn'; back.textContent = 'Back to live (Esc)';
    back.addEventListener('click', () => this.close());
    end.append(back);
    this.rowsEl.append(end);
  }

  /** Drops rows beyond the cap from one end, keeping where the reader looks. @param {'top' | 'bottom'} end */
  trim(end) {
    const el = this.rowsEl;
    const rows = () => /** @type {PastRow[]} */ (Array.from(el.children)).filter((r) => r.tcLine);
    let list = rows();
    if (list.length <= PAST_CAP) return;
    const extra = list.length - PAST_CAP;
    if (end === 'bottom') {
      const dropped = list.slice(list.length - extra);
      const first = /** @type {DiskLine} */ (dropped[0].tcLine);
      for (const r of dropped) r.remove();
      el.querySelector('.past-end')?.remove();
      // A generation marker left below the last row goes too.
      while (el.lastElementChild && !(/** @type {PastRow} */ (el.lastElementChild)).tcLine) el.lastElementChild.remove();
      // Fetched again from there when scrolled back down.
      this.after = `${first.gen}:${first.offset}`;
    } else {
      const h0 = el.scrollHeight;
      const dropped = list.slice(0, extra);
      for (const r of dropped) r.remove();
      // A generation marker left above the first row goes too.
      while (el.firstElementChild && !(/** @type {PastRow} */ (el.firstElementChild)).tcLine) el.firstElementChild.remove();
      list = rows();
      const first = /** @type {DiskLine} */ (list[0].tcLine);
      // The first row says its generation again.
      el.prepend(this.marker(first.gen));
      this.before = `${first.gen}:${first.offset}`;
      this.scrollTo(el.scrollTop - (h0 - el.scrollHeight));
    }
  }

  /** @param {DiskLine[]} lines */
  append(lines) {
    const last = /** @type {PastRow | null} */ (this.lastRow());
    this.rowsEl.append(this.rows(lines, last?.tcLine?.gen ?? null));
  }

  /** @param {DiskLine[]} lines */
  prepend(lines) {
    const first = /** @type {PastRow[]} */ (Array.from(this.rowsEl.children)).find((r) => r.tcLine);
    const frag = this.rows(lines, null);
    // A marker between the new rows and the old ones when the generation changes there.
    if (first?.tcLine && lines.length && lines[lines.length - 1].gen !== first.tcLine.gen) frag.append(this.marker(first.tcLine.gen));
    const oldMarker = this.rowsEl.firstElementChild;
    if (oldMarker && !(/** @type {PastRow} */ (oldMarker)).tcLine && !oldMarker.classList.contains('past-end')) oldMarker.remove();
    this.rowsEl.prepend(frag);
  }

  lastRow() {
    const kids = this.rowsEl.children;
    for (let i = kids.length - 1; i >= 0; i--) if ((/** @type {PastRow} */ (kids[i])).tcLine) return kids[i];
    return null;
  }

  /** Rows for `lines`, with a generation marker where the generation changes (and first when
   *  `prevGen` is null). @param {DiskLine[]} lines @param {string | null} prevGen */
  rows(lines, prevGen) {
    const frag = document.createDocumentFragment();
    let gen = prevGen;
    for (const l of lines) {
      if (l.gen !== gen) { frag.append(this.marker(l.gen)); gen = l.gen; }
      frag.append(this.row(l));
    }
    return frag;
  }

  /** @param {string} gen */
  marker(gen) {
    const m = document.createElement('div');
    m.className = 'past-gen';
    m.textContent = this.names.get(gen) || gen;
    return m;
  }

  /** @param {DiskLine} l */
  row(l) {
    const r = /** @type {PastRow} */ (document.createElement('div'));
    r.className = 'past-row';
    r.tcLine = l;
    const n = document.createElement('span');
    n.className = 'past-n';
    n.textContent = l.line != null ? String(l.line) : '';
    const t = document.createElement('span');
    t.className = 'past-text';
    t.textContent = l.text;
    r.append(n, t);
    if (l.truncated) { const c = document.createElement('span'); c.className = 'trunc'; c.textContent = '…cut'; r.append(c); }
    return r;
  }

  /** Where the reader is, and what the panel holds. @param {string} [error] */
  say(error) {
    if (error) { this.status.textContent = error; return; }
    const rows = /** @type {PastRow[]} */ (Array.from(this.rowsEl.children)).filter((r) => r.tcLine);
    const first = rows[0]?.tcLine;
    const at = first ? `${this.names.get(first.gen) || first.gen}${first.line != null ? ' line ' + fmt(first.line) : ''}` : 'empty';
    this.where.textContent = `${this.id}: from ${at}`;
    this.status.textContent = this.before ? '' : 'First line of the oldest generation';
  }

  /** Searches the shown files (every one of a merged view) and their generations; hits listed as
   *  they come. */
  async search() {
    const q = this.query.value;
    this.searching?.abort();
    const ctl = new AbortController();
    this.searching = ctl;
    this.hitsEl.replaceChildren();
    this.hitsEl.hidden = false;
    if (!q) { this.hitsEl.hidden = true; return; }
    const u = new URL(apiUrl('api/search', { q, generations: 'all', max: MAX_HITS, regex: this.regex.checked ? 1 : null, case: this.caseSens.checked ? 'sensitive' : 'smart' }));
    for (const id of this.ids) u.searchParams.append('file', id);
    const head = document.createElement('div');
    head.className = 'past-hits-head';
    head.textContent = 'Searching…';
    this.hitsEl.append(head);
    let hits = 0;
    /** @type {Map<string, string>} "file gen" -> name */
    const names = new Map();
    try {
      const res = await fetch(u, { headers: authHeaders(), signal: ctl.signal });
      if (!res.ok || !res.body) {
        const body = await res.json().catch(() => ({}));
        head.textContent = body.message || `Search failed (HTTP ${res.status})`;
        return;
      }
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (!line) continue;
          const rec = JSON.parse(line);
          if (rec.type === 'generation') names.set(rec.file + ' ' + rec.gen, rec.name);
          else if (rec.type === 'match') { hits++; this.hitsEl.append(this.hitRow(rec, names.get(rec.file + ' ' + rec.gen) || rec.gen)); head.textContent = `${fmt(hits)} found so far…`; }
          else if (rec.type === 'error') { const e = document.createElement('div'); e.className = 'past-hit-error'; e.textContent = rec.message; this.hitsEl.append(e); }
          else if (rec.type === 'end') {
            const why = rec.stopped === 'max_hits' ? ` (the first ${fmt(hits)}: narrow the search for more)` : rec.stopped === 'time_limit' ? ' (stopped at the time limit)' : '';
            head.textContent = hits ? `${fmt(hits)} found in ${fmtBytes(rec.scanned_bytes)}${why}` : `Nothing matches in ${fmtBytes(rec.scanned_bytes)}${why}`;
          }
        }
      }
    } catch (e) {
      if (!ctl.signal.aborted) head.textContent = 'Search failed: ' + String(e instanceof Error ? e.message : e);
      // Nothing more of it is read: the server's scan stops with the connection.
      ctl.abort();
    } finally {
      if (this.searching === ctl) this.searching = null;
    }
  }

  /** @param {DiskLine & {file: string}} hit @param {string} name */
  hitRow(hit, name) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'past-hit';
    const where = document.createElement('span');
    where.className = 'past-hit-where';
    where.textContent = `${this.ids.length > 1 ? hit.file + ' ' : ''}${name}:${hit.line}`;
    const t = document.createElement('span');
    t.className = 'past-text';
    t.textContent = hit.text;
    b.append(where, t);
    b.addEventListener('click', () => { void this.goTo(hit); });
    return b;
  }

  /** Opens a hit's place: the lines around it, the hit marked and in the middle.
   *  @param {DiskLine & {file: string}} hit */
  async goTo(hit) {
    const epoch = ++this.epoch;
    this.loading = true;
    if (hit.file !== this.id) { this.id = hit.file; this.fileSel.value = hit.file; await this.loadNames(); }
    try {
      const page = await this.page({ around: `${hit.gen}:${hit.offset}` });
      if (epoch !== this.epoch) return;
      this.rowsEl.replaceChildren();
      this.before = page.before;
      this.after = page.after;
      this.append(page.lines);
      const row = /** @type {PastRow[]} */ (Array.from(this.rowsEl.children)).find((r) => r.tcLine && r.tcLine.gen === hit.gen && r.tcLine.offset === hit.offset);
      if (row) { row.classList.add('past-hit-row'); row.scrollIntoView({ block: 'center' }); }
      this.lastTop = this.rowsEl.scrollTop;
    } catch (e) { if (epoch === this.epoch) this.say(String(e instanceof Error ? e.message : e)); return; } finally { if (epoch === this.epoch) this.loading = false; }
    if (epoch === this.epoch) this.say();
  }
}
