// @ts-check
/* tailcast dashboard: one view of lines (the main one, or a pane of a split view). It owns the
 * flow from lines in to rows on screen: its store of entries, its filter and highlights, the
 * queue of entries waiting for the DOM, pause and follow (a held view buffers), the bounded DOM
 * (render.js), scrolling, its counters, and the per-file cursors of what it has (so that two
 * views of one file each get every line once). It does not talk to the server: app.js hands it
 * what the transport delivers. */

import { fmt, now, options } from './basics.js';
import { Filtering } from './filter.js';
import { makeRow, parseAnsi, Rows } from './render.js';
import { files, Lines, mergeByTime, Stager } from './store.js';

/** @typedef {import('./render.js').Entry} Entry */
/** @typedef {import('./store.js').FileRec} FileRec */
/** The elements of a view; the counters, banner and jump button are optional (a pane's own are
 *  fewer). @typedef {{log: HTMLElement, rows: HTMLElement, pending: HTMLElement, empty: HTMLElement,
 *  received?: HTMLElement | null, rowCount?: HTMLElement | null, cap?: HTMLElement | null, trimmed?: HTMLElement | null,
 *  jump?: HTMLElement | null, jumpLabel?: HTMLElement | null, banner?: HTMLElement | null, bannerText?: HTMLElement | null}} ViewElements */

// Time a frame may spend making rows, shared by the views on the page (two panes at 10 000
// lines/s would otherwise spend twice as long, and the frames and the input wait for them).
const FRAME_BUDGET_MS = 10, MIN_SHARE_MS = 3;
/** @type {Set<View>} */
const live = new Set();

// One animation frame for every view with work: each adds its rows, and only then do they read
// the layout (scrolling to the end), so a frame lays the page out once, not once per pane.
/** @type {Set<View>} */
const due = new Set();
let frameAsked = false;
/** @param {View} v */
function askFrame(v) {
  due.add(v);
  if (!frameAsked) { frameAsked = true; requestAnimationFrame(runFrame); }
}
function runFrame() {
  frameAsked = false;
  const list = [...due];
  due.clear();
  const grew = list.filter((v) => v.frame());
  for (const v of grew) v.scrollToEnd();
  for (const v of list) if (v.uiDirty) v.updateUi();
}

export class View {
  /** @param {ViewElements} els
   *  @param {{slow: () => void, paused: (paused: boolean) => void}} hooks  slow: a pattern was left
   *  out (the UI says so); paused: pause changed (the UI's button follows) */
  constructor(els, hooks) {
    this.els = els;
    this.hooks = hooks;
    this.lines = new Lines(options.keep);
    this.flt = new Filtering(this.lines, {
      judged: (from, to) => this.judged(from, to),
      slow: () => { this.hooks.slow(); this.rebuild(); },
    });
    this.rowsDom = new Rows(els.rows);
    /** @type {string[]} files shown (one, or several merged) */
    this.ids = [];
    this.merged = false;
    /** per file: the seq of the last line this view has @type {Map<string, number>} */
    this.cursors = new Map();
    /** per file: the read time of its last line here (a notice about it goes after it) @type {Map<string, number>} */
    this.fileT = new Map();
    this.lastT = 0; // newest read time here: the time of a notice about no file
    this.stats = { received: 0, trimmed: 0, dropped: 0, duplicates: 0, missing: 0 };
    this.ingestedN = 0;  // every entry with n <= ingestedN has been queued for (or filtered out of) the DOM
    /** @type {(Entry | undefined)[]} entries queued for the DOM, oldest first */
    this.pending = [];
    this.pendingHead = 0;
    this.heldCount = 0;  // matching entries waiting because we are paused / not following
    this.paused = false;
    this.following = true;
    this.dropNoticeDue = 0; // dropped while held, to announce in the stream on resume
    this.rebuildDue = false;
    this.rebuildLimitN = 0;
    this.frameRequested = false;
    this.uiDirty = true;
    this.lastUi = 0;
    this.uiTimer = 0;
    /** @type {Map<string, string>} the unfinished last line of each file (no newline yet) */
    this.pendingText = new Map();
    this.stager = new Stager({
      merged: () => this.merged,
      push: (e) => this.pushEntry(e),
      newest: () => { const e = this.lines.last(); return e ? e.t : -Infinity; },
      late: (list) => this.insertLate(list),
    });
    this.rowCtx = {
      merged: false,
      fileOf: (/** @type {string} */ id) => files.get(id),
      /** @type {((e: Entry) => {ranges: import('./render.js').Range[], rowHl: number}) | null} */
      marks: null,
    };
    this.userScrollUntil = 0; this.pointerDown = false; this.lastTop = 0;
    /** @type {ResizeObserver | null} */
    this.resizer = null;
    this.onPointerUp = () => { if (this.pointerDown) { this.pointerDown = false; this.userIntent(); } };
    this.listenScroll();
    live.add(this);
  }

  /** A closed pane: its timers and listeners outside its own elements let go of it. */
  destroy() {
    live.delete(this);
    due.delete(this);
    this.flt.stop();
    clearTimeout(this.uiTimer);
    clearTimeout(this.stager.stageTimer);
    clearTimeout(this.stager.lateTimer);
    window.removeEventListener('pointerup', this.onPointerUp);
    if (this.resizer) this.resizer.disconnect();
    this.ids = [];
  }

  held() { return this.paused || !this.following; }

  // ---------------------------------------------------------------- entries in
  /** @param {Entry} e */
  pushEntry(e) {
    const flt = this.flt;
    const old = this.lines.push(e);
    if (old && old.n > this.ingestedN) {
      // Never reached the DOM. While held that is the pause buffer overflowing; otherwise the
      // row would have been trimmed at once anyway.
      if (this.held()) {
        // A line the worker has not judged yet counts as lost too: it was not shown.
        const known = old.n <= flt.judgedThrough();
        if (!known || flt.matches(old)) { this.stats.dropped++; this.dropNoticeDue++; if (known) this.heldCount = Math.max(0, this.heldCount - 1); }
      } else if (!old.kind) this.stats.trimmed++;
      if (this.ingestedN < old.n) this.ingestedN = old.n;
    }
    if (flt.async) flt.pumpSoon(); // judged later: see filter.js
    else if (this.held() && flt.matches(e)) this.heldCount++;
    this.schedule();
  }

  /** A notice in the stream. One about file id sits after that file's last line in a merged
   *  view (its time is that line's), another one after every line so far.
   *  @param {string} kind @param {string} text @param {string} [id] */
  notice(kind, text, id) {
    this.stager.add({ n: 0, f: null, seq: 0, t: (id && this.fileT.get(id)) || this.lastT, text, segs: null, trunc: false, kind });
  }

  /** Lines of file f starting at seq first, read at timeAt(seq). Drops repeats, notices holes,
   *  advances this view's cursor of f.
   *  @param {FileRec} f @param {number} first @param {unknown[]} lines @param {number[] | undefined} truncated
   *  @param {(seq: number) => number} timeAt */
  deliver(f, first, lines, truncated, timeAt) {
    if (!lines.length) return;
    const cursor = this.cursors.get(f.id);
    let skip = 0;
    if (cursor != null) {
      if (first <= cursor) {
        skip = Math.min(lines.length, cursor - first + 1);
        this.stats.duplicates += skip;
      } else if (first > cursor + 1) {
        this.stats.missing += first - cursor - 1;
        this.notice('gap', `${f.id}: lines ${fmt(cursor + 1)}\u2013${fmt(first - 1)} are missing`, f.id);
      }
    }
    if (skip >= lines.length) return;
    const tset = truncated && truncated.length ? new Set(truncated) : null;
    let t = this.fileT.get(f.id) || 0;
    for (let i = skip; i < lines.length; i++) {
      const raw = typeof lines[i] === 'string' ? /** @type {string} */ (lines[i]) : String(lines[i]);
      const seq = first + i;
      const p = parseAnsi(raw);
      // A file's lines keep their order whatever the times say (a server whose clock was set back).
      t = Math.max(timeAt(seq), t);
      const e = { n: 0, f: f.id, seq, t, text: p.text, segs: p.segs, trunc: tset ? tset.has(seq) : false, kind: null };
      // (A one-file view stores at once, without the stager's indirection: this runs per line.)
      if (this.merged) this.stager.add(e); else this.pushEntry(e);
    }
    this.fileT.set(f.id, t);
    if (t > this.lastT) this.lastT = t;
    this.stats.received += lines.length - skip;
    this.cursors.set(f.id, first + lines.length - 1);
  }

  /** Lines from..to of f will not come. @param {FileRec} f @param {number} from @param {number} to */
  onGap(f, from, to) {
    this.stats.missing += to - from + 1;
    this.notice('gap', `${f.id}: lines ${fmt(from)}\u2013${fmt(to)} will not come (out of the server's history, or this page fell behind)`, f.id);
    const cursor = this.cursors.get(f.id);
    if (cursor == null || to > cursor) this.cursors.set(f.id, to);
  }

  /** The unfinished last line of f (no newline yet), shown under the lines. @param {FileRec} f @param {unknown} text */
  onPartial(f, text) {
    if (typeof text === 'string' && text.length) this.pendingText.set(f.id, text); else this.pendingText.delete(f.id);
    this.renderPending();
  }
  renderPending() {
    const el = this.els.pending;
    el.textContent = '';
    for (const id of this.ids) {
      const text = this.pendingText.get(id);
      if (text == null) continue;
      const row = document.createElement('div');
      row.className = 'row';
      const ln = document.createElement('span');
      ln.className = 'ln';
      const tx = document.createElement('span');
      tx.className = 'tx';
      tx.textContent = (this.ids.length > 1 ? id + ': ' : '') + parseAnsi(text).text;
      row.append(ln, tx);
      el.append(row);
    }
    el.hidden = !el.childElementCount;
    if (this.following) this.scrollToEnd();
  }

  /** Forget the lines of these files (a numbering that is gone) and redraw; counters follow.
   *  @param {string[]} ids */
  dropLinesOf(ids) {
    if (!ids.length) return;
    const set = new Set(ids);
    const goneWaiting = this.stager.unstage((e) => !!e.kind || !set.has(/** @type {string} */ (e.f))); // never shown, so never trimmed
    let onScreen = 0;
    for (const r of this.rowsDom.all()) if (!r.tcEntry.kind && set.has(/** @type {string} */ (r.tcEntry.f))) onScreen++;
    const gone = this.lines.keep((e) => !!e.kind || !set.has(/** @type {string} */ (e.f)), options.keep);
    // received = rows + trimmed (+ filtered out) holds on: the lines gone leave both sides.
    this.stats.received = Math.max(0, this.stats.received - gone - goneWaiting);
    this.stats.trimmed = Math.max(0, this.stats.trimmed - (gone - onScreen));
    for (const id of ids) { this.pendingText.delete(id); this.cursors.delete(id); this.fileT.delete(id); }
    this.renderPending();
    this.rebuild();
  }

  /** Put entries (sorted by time) in their places among the stored ones, number the store
   *  again, and redraw: entries before the last one shown are shown, the others wait as before.
   *  @param {Entry[]} list */
  insertLate(list) {
    const flt = this.flt;
    const old = this.lines.toArray();
    const sync = !flt.async; // counters can follow only if matching needs no worker
    const decided = (/** @type {Entry} */ e, /** @type {number} */ limit) => e.n <= limit && !e.kind && flt.matches(e);
    const before = sync ? old.reduce((k, e) => k + (decided(e, this.ingestedN) ? 1 : 0), 0) : 0;
    const domBefore = this.rowsDom.lines;
    const { all, shownAt } = mergeByTime(old, list, this.ingestedN);
    const from = Math.max(0, all.length - options.keep);
    let evicted = 0;
    for (let i = 0; i < from; i++) if (!all[i].kind && (!sync || flt.matches(all[i]))) evicted++;
    const kept = all.slice(from);
    this.lines.renumber(kept, options.keep);
    const limit = shownAt >= from ? all[shownAt].n : 0;
    this.ingestedN = this.held() ? limit : this.lines.nextN - 1;
    const after = sync ? kept.reduce((k, e) => k + (decided(e, this.ingestedN) ? 1 : 0), 0) : 0;
    this.rebuild();
    // Every line decided (shown or passed over) is on screen or counted trimmed.
    if (sync && !this.rebuildDue) {
      this.stats.trimmed = Math.max(0, this.stats.trimmed + evicted + (after - before) - (this.rowsDom.lines - domBefore));
    }
    this.updateUi(true);
  }

  /** Show these files: lines of those that stay are kept, the others start afresh.
   *  @param {string[]} ids */
  setIds(ids) {
    // What waits to be sorted in is stored first (in its order), then kept like the rest.
    this.stager.flush();
    this.stager.flushLate();
    const stay = new Set(ids.filter((id) => this.ids.includes(id)));
    for (const id of this.ids) if (!stay.has(id)) { this.cursors.delete(id); this.fileT.delete(id); this.pendingText.delete(id); }
    this.ids = ids;
    this.merged = ids.length > 1;
    this.rowCtx.merged = this.merged;
    this.lines.keep((e) => !e.kind && stay.has(/** @type {string} */ (e.f)), options.keep);
    this.pending = []; this.pendingHead = 0; this.ingestedN = this.lines.nextN - 1; this.heldCount = 0; this.dropNoticeDue = 0;
    // The counters describe this view: the kept lines count as received, those past the cap as
    // trimmed (the redraw shows the newest options.maxRows).
    const s = this.stats;
    s.received = this.lines.len; s.trimmed = Math.max(0, this.lines.len - options.maxRows);
    s.dropped = 0; s.duplicates = 0; s.missing = 0;
    this.following = true;
    this.setPaused(false);
    const maxLen = Math.max(4, ...ids.map((id) => id.length));
    this.els.rows.style.setProperty('--fl-w', Math.min(maxLen, 24) + 'ch');
    this.rowsDom.clear(); // not the old view's rows while the new one is being judged
    this.renderPending();
    this.rebuild();
  }

  /** A new capacity of the store (the setting). */
  resize() {
    this.lines.keep(() => true, options.keep);
  }

  // ---------------------------------------------------------------- to the DOM
  schedule() {
    this.uiDirty = true;
    if (!this.frameRequested) { this.frameRequested = true; askFrame(this); }
  }

  /** Judging has gone from fromN to toN: count what waits while held, finish a rebuild.
   *  @param {number} fromN @param {number} toN */
  judged(fromN, toN) {
    if (this.rebuildDue) this.finishRebuild();
    else if (this.held()) {
      const lines = this.lines;
      for (let i = lines.indexAfter(Math.max(fromN, this.ingestedN)); i < lines.len && lines.at(i).n <= toN; i++) if (this.flt.matches(lines.at(i))) this.heldCount++;
    }
    this.schedule();
  }

  /** Move new store entries that pass the filter (judged ones only) into the pending queue. */
  ingest() {
    const upTo = this.flt.judgedThrough();
    if (this.rebuildDue || upTo <= this.ingestedN) return;
    const lines = this.lines;
    for (let i = lines.indexAfter(this.ingestedN); i < lines.len; i++) {
      const e = lines.at(i);
      if (e.n > upTo) break;
      if (this.flt.matches(e)) this.pending.push(e);
    }
    this.ingestedN = upTo;
    // More than a screenful waiting: the oldest would be trimmed the moment they were drawn.
    const waiting = this.pending.length - this.pendingHead;
    if (waiting > options.maxRows) {
      const skip = waiting - options.maxRows;
      for (let j = this.pendingHead; j < this.pendingHead + skip; j++) if (!(/** @type {Entry} */ (this.pending[j])).kind) this.stats.trimmed++;
      this.pendingHead += skip;
    }
    if (this.pendingHead > 4096 && this.pendingHead * 2 > this.pending.length) { this.pending = this.pending.slice(this.pendingHead); this.pendingHead = 0; }
  }

  trimDom() { this.stats.trimmed += this.rowsDom.trim(options.maxRows); }

  /** This view's part of a frame (runFrame): new rows in; true when it added some (it is then
   *  scrolled to the end once every view has added its rows). */
  frame() {
    this.frameRequested = false;
    let grew = false;
    if (!this.held()) {
      this.ingest();
      if (this.dropNoticeDue) {
        // Goes where the lost lines were: before the buffered ones, and kept on screen.
        this.pending.splice(this.pendingHead, 0, { n: 0, f: null, seq: 0, t: this.lastT, segs: null, trunc: false, kind: 'drop',
          text: `${fmt(this.dropNoticeDue)} lines were not shown: the pause buffer (${fmt(options.keep)} lines) overflowed` });
        if (this.pending.length - this.pendingHead > options.maxRows) { this.pending.splice(this.pendingHead + 1, 1); this.stats.trimmed++; }
        this.dropNoticeDue = 0;
      }
      if (this.pending.length > this.pendingHead) {
        const t0 = now(), budget = Math.max(MIN_SHARE_MS, FRAME_BUDGET_MS / Math.max(1, live.size));
        const list = [];
        this.rowCtx.marks = this.flt.hasMarks ? (e) => this.flt.marks(e) : null;
        while (this.pendingHead < this.pending.length) {
          const e = /** @type {Entry} */ (this.pending[this.pendingHead]);
          this.pending[this.pendingHead++] = undefined;
          list.push(makeRow(e, this.rowCtx));
          if ((list.length & 63) === 0 && now() - t0 > budget) break;
        }
        if (this.pendingHead >= this.pending.length) { this.pending = []; this.pendingHead = 0; }
        this.rowsDom.append(list);
        this.trimDom();
        grew = true;
        // The counters (and the empty-view message) follow the rows drawn, even when a throttled
        // update ran between schedule() and this frame.
        this.uiDirty = true;
        if (this.pendingHead < this.pending.length) { this.frameRequested = true; askFrame(this); }
      }
    }
    return grew;
  }

  /** Counters are throttled; state changes (pause, follow) call updateUi(true) to show at once.
   *  @param {boolean} [force] */
  updateUi(force) {
    const t = now();
    // The first rows drawn replace the empty-view message at once, not a throttle later.
    if (this.rowsDom.rows > 0 && !this.els.empty.hidden) force = true;
    if (!force && t - this.lastUi < 150) {
      if (!this.uiTimer) this.uiTimer = window.setTimeout(() => { this.uiTimer = 0; this.updateUi(); }, 160);
      return;
    }
    this.lastUi = t;
    this.uiDirty = false;
    const els = this.els, s = this.stats, held = this.held(), n = this.heldCount;
    if (els.received) els.received.textContent = fmt(s.received);
    if (els.rowCount) els.rowCount.textContent = fmt(this.rowsDom.lines); // lines, as received and trimmed count (notices apart)
    if (els.cap) els.cap.textContent = fmt(options.maxRows);
    if (els.trimmed) els.trimmed.textContent = fmt(s.trimmed);
    if (els.jump && els.jumpLabel) {
      if (held && n > 0) {
        els.jumpLabel.textContent = `${fmt(n)} new line${n === 1 ? '' : 's'}, jump to end`;
        els.jump.hidden = false;
      } else if (!this.following) {
        els.jumpLabel.textContent = 'Jump to end';
        els.jump.hidden = false;
      } else els.jump.hidden = true;
    }
    if (els.banner && els.bannerText) {
      if (this.paused) {
        els.banner.hidden = false;
        els.banner.classList.toggle('overflow', s.dropped > 0 && this.dropNoticeDue > 0);
        els.bannerText.textContent = this.dropNoticeDue > 0
          ? `Paused. Buffer full (${fmt(options.keep)} lines): ${fmt(this.dropNoticeDue)} oldest new lines dropped, ${fmt(n)} kept.`
          : `Paused. ${fmt(n)} new line${n === 1 ? '' : 's'} buffered (up to ${fmt(options.keep)}).`;
      } else els.banner.hidden = true;
    }
    const empty = els.empty;
    if (this.rowsDom.rows === 0) {
      empty.hidden = false;
      empty.textContent = this.ids.length === 0 ? 'No file selected.'
        : this.rebuildDue ? 'Matching\u2026'
          : this.lines.len > 0 && !held ? 'No line matches the filter.'
            : `Waiting for lines from ${this.ids.join(', ')}\u2026`;
    } else empty.hidden = true;
  }

  /** Redraw the view from the store with the current filter and rules (after a change of them). */
  rebuild() {
    this.flt.renew();
    this.pending = []; this.pendingHead = 0;
    this.rebuildLimitN = this.held() ? this.ingestedN : this.lines.nextN - 1;
    this.rebuildDue = true;
    this.heldCount = 0;
    this.finishRebuild();
    this.schedule();
  }
  /** The redraw itself, once every line it may show is judged (at once without a user regex). */
  finishRebuild() {
    const flt = this.flt, lines = this.lines;
    if (!this.rebuildDue || flt.judgedThrough() < this.rebuildLimitN) return;
    this.rebuildDue = false;
    this.rowsDom.clear();
    const limitN = this.rebuildLimitN;
    const picked = [];
    for (let i = lines.len - 1; i >= 0 && picked.length < options.maxRows; i--) {
      const e = lines.at(i);
      if (e.n > limitN) continue;
      if (flt.matches(e)) picked.push(e);
    }
    this.ingestedN = Math.max(this.ingestedN, limitN);
    this.rowCtx.marks = flt.hasMarks ? (e) => flt.marks(e) : null;
    const list = [];
    for (let i = picked.length - 1; i >= 0; i--) list.push(makeRow(picked[i], this.rowCtx));
    this.rowsDom.append(list);
    this.heldCount = 0;
    if (this.held()) for (let i = lines.indexAfter(this.ingestedN); i < lines.len && lines.at(i).n <= flt.judgedThrough(); i++) if (flt.matches(lines.at(i))) this.heldCount++;
    if (this.following) this.scrollToEnd();
  }

  // ---------------------------------------------------------------- scrolling, pause
  // Only the user stops following: a scroll upwards counts as theirs if it comes while a pointer
  // is down or soon after wheel/touch/keyboard input. Other scrolls (rows above changing height
  // as chunks get laid out) just stick to the bottom again.
  atBottom() { const l = this.els.log; return l.scrollHeight - l.scrollTop - l.clientHeight < 6; }
  scrollToEnd() { const l = this.els.log; l.scrollTop = l.scrollHeight; this.lastTop = l.scrollTop; }
  userIntent() { this.userScrollUntil = now() + 800; }
  stopFollowing() {
    const l = this.els.log;
    if (this.following && l.scrollHeight > l.clientHeight) { this.following = false; this.heldCount = 0; this.schedule(); this.updateUi(true); }
  }
  listenScroll() {
    const logEl = this.els.log;
    logEl.addEventListener('scroll', () => {
      const top = logEl.scrollTop;
      const movedUp = top < this.lastTop - 1;
      this.lastTop = top;
      if (this.atBottom()) {
        if (!this.following) { this.following = true; this.heldCount = 0; this.schedule(); this.updateUi(true); }
      } else if (this.following) {
        if (movedUp && (this.pointerDown || now() < this.userScrollUntil)) this.stopFollowing(); else this.scrollToEnd();
      }
    }, { passive: true });
    logEl.addEventListener('wheel', (ev) => {
      if (ev.deltaY < 0) { this.userIntent(); if (logEl.scrollTop > 0) this.stopFollowing(); }
    }, { passive: true });
    logEl.addEventListener('touchmove', () => this.userIntent(), { passive: true });
    logEl.addEventListener('keydown', (ev) => {
      if (['PageUp', 'ArrowUp', 'Home'].includes(ev.key)) { this.userIntent(); this.stopFollowing(); }
    });
    logEl.addEventListener('pointerdown', () => { this.pointerDown = true; this.userIntent(); });
    window.addEventListener('pointerup', this.onPointerUp);
    // Rows growing after layout (a chunk's real height replacing its estimate) keep the end in view.
    this.resizer = new ResizeObserver(() => { if (this.following) this.scrollToEnd(); });
    this.resizer.observe(this.els.rows);
  }

  /** @param {boolean} p */
  setPaused(p) {
    if (this.paused === p) return;
    const wasHeld = this.held();
    this.paused = p;
    if (!wasHeld && this.held()) this.heldCount = 0;
    this.hooks.paused(p);
    if (!this.held()) { this.heldCount = 0; this.scrollToEnd(); }
    this.schedule();
    this.updateUi(true);
  }
  jumpToEnd() {
    this.setPaused(false);
    this.following = true;
    this.heldCount = 0;
    this.scrollToEnd();
    this.schedule();
    this.updateUi(true);
    requestAnimationFrame(() => { if (this.following && !this.paused) this.scrollToEnd(); });
  }

  /** The text of the rows on screen (copy, download). */
  visibleText() {
    const out = [];
    for (const r of this.rowsDom.all()) {
      const e = r.tcEntry;
      if (e.kind) out.push(`-- ${e.text} --`);
      else out.push(this.merged ? `[${e.f}] ${e.text}` : e.text);
    }
    return out.join('\n') + (out.length ? '\n' : '');
  }
}
