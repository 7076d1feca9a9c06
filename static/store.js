// @ts-check
/* tailcast dashboard: what the page holds. The files (with each one's cursor: the seq of its
 * last line here), the bounded store of entries (lines and notices, each with a gap-free arrival
 * number n), and the ordering of a merged view's entries by read time before they are stored.
 * No DOM: the view (view.js) draws what is here. */

/** @typedef {import('./render.js').Entry} Entry */

/** A followed file as the page knows it.
 *  @typedef {{id: string, path?: string, exists: boolean, size?: number, last_seq?: number,
 *             node?: string, error?: string, remote?: boolean,
 *             cursor: number | null, baseline: number | null, subscribed: boolean, color: number,
 *             activity: number, lastT?: number, el: (HTMLLIElement & {tcMeta?: string}) | null}} FileRec */

/** id -> file, and the server's order of them. */
export const files = /** @type {Map<string, FileRec>} */ (new Map());

/** Fixed-capacity ring of entries. @template T */
export class Ring {
  /** @param {number} cap */
  constructor(cap) { this.cap = cap; /** @type {T[]} */ this.buf = new Array(cap); this.start = 0; this.len = 0; }
  /** Adds x; returns what it pushed out, if anything. @param {T} x @returns {T | null} */
  push(x) {
    if (this.len < this.cap) { this.buf[(this.start + this.len) % this.cap] = x; this.len++; return null; }
    const old = this.buf[this.start];
    this.buf[this.start] = x;
    this.start = (this.start + 1) % this.cap;
    return old;
  }
  /** @param {number} i */
  at(i) { return this.buf[(this.start + i) % this.cap]; }
}

/** The entries of the view, oldest first; n grows along them (with holes where some left). */
export class Lines {
  /** @param {number} cap */
  constructor(cap) { /** @type {Ring<Entry>} */ this.ring = new Ring(cap); this.nextN = 1; }
  get len() { return this.ring.len; }
  /** @param {number} i */
  at(i) { return this.ring.at(i); }
  /** The newest entry, if any. */
  last() { return this.ring.len ? this.ring.at(this.ring.len - 1) : null; }
  /** Numbers and stores e; returns the entry it pushed out, if any. @param {Entry} e */
  push(e) { e.n = this.nextN++; return this.ring.push(e); }
  /** Index of the first entry with n > after. @param {number} after */
  indexAfter(after) {
    let lo = 0, hi = this.ring.len;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (this.ring.at(mid).n <= after) lo = mid + 1; else hi = mid; }
    return lo;
  }
  /** Every entry, oldest first. @returns {Entry[]} */
  toArray() { const out = []; for (let i = 0; i < this.ring.len; i++) out.push(this.ring.at(i)); return out; }
  /** Keeps the entries pred takes (their numbers too), in a store of capacity cap; returns the
   *  line entries dropped. @param {(e: Entry) => boolean} pred @param {number} cap */
  keep(pred, cap) {
    const old = this.ring;
    this.ring = new Ring(cap);
    let gone = 0;
    for (let i = Math.max(0, old.len - cap); i < old.len; i++) { const e = old.at(i); if (pred(e)) this.ring.push(e); else if (!e.kind) gone++; }
    return gone;
  }
  /** Replaces every entry by list (in that order), numbered from 1 again. @param {Entry[]} list @param {number} cap */
  renumber(list, cap) {
    this.ring = new Ring(cap);
    this.nextN = 1;
    for (const e of list) this.push(e);
  }
}

// ---------------------------------------------------------------- merged views: by read time
// A merged view shows its files' lines in the order the server read them (each lines message
// says when: docs/protocol.md), backlogs included: the backlogs of two files arrive one after
// the other, and must not show as two blocks. Entries of a merged view wait STAGE_MS, so that
// what arrives together (the backlogs, one long-poll answer, live lines of several files) is
// sorted before it is stored, the cheap case. An entry older than the newest stored one (a
// file's backlog arriving later: a file added to the view, a reconnect) is handed to `late`,
// which puts it in its place and redraws, at most every LATE_MS. A one-file view stores its
// lines as they come: nothing waits.
const STAGE_MS = 40, LATE_MS = 250;

export class Stager {
  /** @param {{merged: () => boolean, push: (e: Entry) => void, newest: () => number, late: (list: Entry[]) => void}} sink */
  constructor(sink) {
    this.sink = sink;
    /** @type {Entry[]} waiting to be sorted in, in arrival order */
    this.staged = [];
    /** @type {Entry[]} older than the newest stored entry */
    this.late = [];
    this.stageTimer = 0;
    this.lateTimer = 0;
    this.lastLate = -Infinity;
  }
  /** @param {Entry} e */
  add(e) {
    if (!this.sink.merged()) { this.sink.push(e); return; }
    this.staged.push(e);
    if (!this.stageTimer) this.stageTimer = window.setTimeout(() => this.flush(), STAGE_MS);
  }
  /** Sorts what waits into the store now (a view change needs it there). */
  flush() {
    clearTimeout(this.stageTimer); this.stageTimer = 0;
    if (this.staged.length) {
      const list = this.staged;
      this.staged = [];
      list.sort((a, b) => a.t - b.t); // stable: one file's lines, and equal times, keep their order
      const newest = this.sink.newest();
      for (const e of list) { if (e.t < newest) this.late.push(e); else this.sink.push(e); }
    }
    if (this.late.length && !this.lateTimer) {
      this.lateTimer = window.setTimeout(() => this.flushLate(), Math.max(0, this.lastLate + LATE_MS - performance.now()));
    }
  }
  /** Hands the late entries over now. */
  flushLate() {
    clearTimeout(this.lateTimer); this.lateTimer = 0;
    if (!this.late.length) return;
    this.lastLate = performance.now();
    const list = this.late;
    this.late = [];
    this.sink.late(list);
  }
  /** Drops what waits that keep refuses; returns the line entries dropped. @param {(e: Entry) => boolean} keep */
  unstage(keep) {
    const before = this.staged.length + this.late.length;
    const lines = [...this.staged, ...this.late].filter((e) => !e.kind && !keep(e)).length;
    this.staged = this.staged.filter(keep);
    this.late = this.late.filter(keep);
    return before === this.staged.length + this.late.length ? 0 : lines;
  }
}

/** Merges list (sorted by time) into old (sorted by time; on equal times old first); returns the
 *  whole and the index in it of the last entry of old with n <= shownN (-1 if none).
 *  @param {Entry[]} old @param {Entry[]} list @param {number} shownN */
export function mergeByTime(old, list, shownN) {
  /** @type {Entry[]} */
  const all = [];
  let a = 0, b = 0, shownAt = -1;
  while (a < old.length || b < list.length) {
    if (b >= list.length || (a < old.length && old[a].t <= list[b].t)) {
      const e = old[a++];
      if (e.n <= shownN) shownAt = all.length;
      all.push(e);
    } else all.push(list[b++]);
  }
  return { all, shownAt };
}

/** seq -> read time of a lines message: `times` ([[SEQ, MS], ...], the time of the lines from
 *  SEQ on) when the lines span several reads, else `time`; a server without times: now.
 *  @param {unknown} time @param {unknown} times @returns {(seq: number) => number} */
export function timeOf(time, times) {
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
