// @ts-check
/* tailcast dashboard: the filter and the highlight rules of a view, and the judging of its
 * lines by them. User regexes run in regex-worker.js under a time budget (see below); substring
 * filters and plain words run here. It reads the view's store (store.js) and tells the view when
 * lines are judged; it draws nothing. */

import { apiUrl, now } from './basics.js';

/** @typedef {import('./render.js').Entry} Entry */
/** @typedef {import('./render.js').Range} Range */
/** @typedef {import('./store.js').Lines} Lines */
/** @typedef {{label: string, why: string}} Slow  why a pattern is left out */
/** @typedef {{q: string, regex: boolean, caseSensitive: boolean, invert: boolean, re: RegExp | null,
 *             lower: string, error: string | null, slow: Slow | null, slowKey: string}} FilterState */
/** @typedef {{pattern: string, color: number, re: RegExp | null, regex: boolean, slow: Slow | null}} Rule */
/** @typedef {{re: RegExp, test: boolean, ranges: boolean, owner: FilterState | Rule}} Work */

const MAX_MARKS = 64; // marks per pattern and line
const HL_REGEX = /^\/(.+)\/([a-z]*)$/;

/** A highlight rule: a word (any case) or a /regex/ (case-sensitive only if it has capitals).
 *  @param {string} pattern @param {number} color @returns {Rule} */
export function makeRule(pattern, color) {
  const m = HL_REGEX.exec(pattern);
  let re = null;
  try {
    if (m) re = new RegExp(m[1], 'g' + (m[2].includes('i') || !/[A-Z]/.test(m[1]) ? 'i' : ''));
    else re = new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gi');
  } catch { /* invalid: re stays null */ }
  return { pattern, color, re, regex: !!m, slow: null };
}

/** Up to MAX_MARKS non-empty matches of a global re in text, flat [start, end, ...] (the loop
 *  regex-worker.js runs for user regexes; here only for plain words). @param {RegExp} re @param {string} text */
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

// ---------------------------------------------------------------- user regexes in a Worker
// The browser's regex engine backtracks: one user pattern can take exponential time on one line
// (/^(a+)+$/ on "aaaa...a!" runs for hours), and on this thread that is a frozen tab. So every
// user regex (the filter's, /regex/ rules) runs in regex-worker.js, on batches of lines, and
// each pattern has REGEX_BUDGET_MS per batch: a worker that has not answered by then is
// terminated and replaced, and the pattern is marked too slow and left out (the filter then
// shows every line, as for an invalid regex; a rule marks nothing).
//
// Results come back later, so while the matcher has work for the worker, lines are judged in
// arrival order and judgedThrough() says how far: the view shows no row before its filter
// result and marks are known.
const REGEX_BUDGET_MS = 250;   // per pattern and batch
const WORKER_START_MS = 10000; // a worker that has not started a batch by then is broken
const BATCH_LINES = 1000, BATCH_CHARS = 256 * 1024;
const TOO_SLOW = { label: 'Regex too slow', why: `pattern too slow (over ${REGEX_BUDGET_MS} ms on these lines): simplify it` };

/** @typedef {{id: number, list: Entry[], lastN: number, answers: {type: string, hits?: number[], found?: (number[] | undefined)[]}[], timer: number}} Batch */

export class Filtering {
  /** @param {Lines} lines the view's store
   *  @param {{judged: (fromN: number, toN: number) => void, slow: () => void}} hooks */
  constructor(lines, hooks) {
    this.lines = lines;
    this.hooks = hooks;
    /** @type {FilterState} */
    this.filter = { q: '', regex: false, caseSensitive: false, invert: false, re: null, lower: '', error: null, slow: null, slowKey: '' };
    /** @type {Rule[]} */
    this.highlights = [];
    // A snapshot of the filter and rules (renew() takes it), so a change applies to the whole
    // view at once:
    //   pick   null (every line shows) | {slot, lower, cs, invert}: the filter; slot >= 0 if a regex
    //   marks  what marks a line, in order (the filter's, then the rules'); slot >= 0: a user
    //          regex, its matches come from the worker; else re, a plain word, or the filter's
    //          substring if null
    //   work   the user regexes the worker runs, by slot
    /** @type {{pick: {slot: number, lower: string, cs: boolean, invert: boolean} | null,
     *          marks: {slot: number, re: RegExp | null, cls: string, rule: number}[], work: Work[]}} */
    this.matcher = { pick: null, marks: [], work: [] };
    /** @type {{worker: Worker | null, batch: Batch | null, nextId: number, sentN: number, judgedN: number, queued: boolean}} */
    this.judge = { worker: null, batch: null, nextId: 1, sentN: 0, judgedN: 0, queued: false };
  }

  key() { const f = this.filter; return JSON.stringify([f.q, f.regex, f.caseSensitive]); }
  /** What the filter and rules are, to tell whether they changed. */
  signature() {
    const f = this.filter;
    return JSON.stringify([f.q, f.regex, f.caseSensitive, f.invert, this.highlights.map((h) => h.color + h.pattern)]);
  }
  compile() {
    const f = this.filter;
    f.re = null; f.error = null; f.lower = f.caseSensitive ? f.q : f.q.toLowerCase();
    // A pattern found too slow stays so until it is edited: the verdict would be the same.
    if (f.slowKey !== this.key()) f.slow = null;
    if (f.q && f.regex) {
      try { f.re = new RegExp(f.q, f.caseSensitive ? 'g' : 'gi'); } catch (err) { f.error = /** @type {Error} */ (err).message; }
    }
  }

  /** True while lines wait for the worker before they can be shown. */
  get async() { return this.matcher.work.length > 0; }
  /** Every entry with n up to this has a known match under the current matcher. */
  judgedThrough() { return this.matcher.work.length ? this.judge.judgedN : this.lines.nextN - 1; }

  /** Notices always show; lines go through the filter (a regex one: only once judged). @param {Entry} e */
  matches(e) {
    const p = this.matcher.pick;
    if (e.kind || !p) return true;
    const hit = p.slot >= 0 ? e.hit : (p.cs ? e.text : e.text.toLowerCase()).includes(p.lower);
    return p.invert ? !hit : hit;
  }
  get hasMarks() { return this.matcher.marks.length > 0; }
  /** Non-overlapping [start, end, cls] ranges in e's text: the filter's match, then rules in order.
   *  @param {Entry} e @returns {{ranges: Range[], rowHl: number}} */
  marks(e) {
    /** @type {Range[]} */
    const out = [];
    let rowHl = -1;
    const add = (/** @type {number[] | null | undefined} */ flat, /** @type {string} */ cls, /** @type {number} */ rule) => {
      if (!flat || !flat.length) return;
      if (rule >= 0 && rowHl < 0) rowHl = rule;
      for (let i = 0; i < flat.length; i += 2) {
        const s = flat[i], t = flat[i + 1];
        if (!out.some((r) => s < r[1] && t > r[0])) out.push([s, t, cls]);
      }
    };
    for (const mk of this.matcher.marks) {
      if (mk.slot >= 0) add(e.found && e.found[mk.slot], mk.cls, mk.rule);
      else if (mk.re) add(findRanges(mk.re, e.text), mk.cls, mk.rule);
      else {
        const p = /** @type {{lower: string, cs: boolean}} */ (this.matcher.pick), hay = p.cs ? e.text : e.text.toLowerCase(), flat = [];
        for (let i = 0; flat.length < 2 * MAX_MARKS && (i = hay.indexOf(p.lower, i)) !== -1; i += p.lower.length) flat.push(i, i + p.lower.length);
        add(flat, mk.cls, mk.rule);
      }
    }
    out.sort((a, b) => a[0] - b[0]);
    return { ranges: out, rowHl };
  }

  stop() {
    const j = this.judge;
    if (j.batch) { clearTimeout(j.batch.timer); j.batch = null; }
    if (j.worker) { j.worker.terminate(); j.worker = null; }
  }

  /** Snapshot filter and rules into the matcher; the worker starts over from the oldest line. */
  renew() {
    if (this.judge.batch) this.stop(); // busy with lines for the old matcher
    const f = this.filter;
    /** @type {Work[]} */
    const work = [];
    /** @type {{slot: number, re: RegExp | null, cls: string, rule: number}[]} */
    const marks = [];
    let pick = null;
    if (f.q && !f.error && !f.slow) {
      const slot = f.re ? work.push({ re: f.re, test: true, ranges: !f.invert, owner: f }) - 1 : -1;
      pick = { slot, lower: f.lower, cs: f.caseSensitive, invert: f.invert };
      if (!f.invert) marks.push({ slot, re: null, cls: 'm-q', rule: -1 });
    }
    for (const h of this.highlights) {
      if (!h.re || h.slow) continue;
      const slot = h.regex ? work.push({ re: h.re, test: false, ranges: true, owner: h }) - 1 : -1;
      marks.push({ slot, re: h.re, cls: 'hl-' + h.color, rule: h.color });
    }
    this.matcher = { pick, marks, work };
    const lines = this.lines;
    this.judge.sentN = this.judge.judgedN = lines.len ? lines.at(0).n - 1 : lines.nextN - 1;
    if (work.length) this.pumpSoon();
  }

  pumpSoon() { if (!this.judge.queued) { this.judge.queued = true; queueMicrotask(() => this.pump()); } }
  /** Send the worker the next batch of unjudged lines, if it is idle. */
  pump() {
    const j = this.judge, lines = this.lines;
    j.queued = false;
    if (!this.matcher.work.length || j.batch) return;
    const from = lines.indexAfter(j.sentN);
    const list = [], texts = [];
    let i = from, chars = 0;
    for (; i < lines.len && list.length < BATCH_LINES && chars < BATCH_CHARS; i++) {
      const e = lines.at(i);
      if (e.kind) continue;
      list.push(e); texts.push(e.text); chars += e.text.length;
    }
    if (i === from) return;
    const lastN = lines.at(i - 1).n;
    j.sentN = lastN;
    if (!list.length) { this.judged(lastN); return; } // only notices
    if (!j.worker) {
      const w = new Worker(apiUrl('regex-worker.js'));
      w.onmessage = (ev) => this.onWorkerMessage(ev);
      w.onerror = (ev) => { ev.preventDefault(); if (j.worker === w) this.workerFailed(ev.message || 'the worker failed'); };
      j.worker = w;
    }
    /** @type {Batch} */
    const b = { id: j.nextId++, list, lastN, answers: [], timer: 0 };
    j.batch = b;
    j.worker.postMessage({ id: b.id, texts, work: this.matcher.work.map((w) => ({ source: w.re.source, flags: w.re.flags, test: w.test, ranges: w.ranges })) });
    b.timer = window.setTimeout(() => this.workerFailed('the worker did not start'), WORKER_START_MS);
  }

  /** @param {MessageEvent} ev */
  onWorkerMessage(ev) {
    const j = this.judge, b = j.batch, msg = ev.data;
    if (!b || msg.id !== b.id) return;
    if (msg.type === 'slot') b.answers.push(msg); // patterns answer in slot order
    if (b.answers.length < this.matcher.work.length) { this.armBudget(b); return; }
    clearTimeout(b.timer);
    j.batch = null;
    const pickSlot = this.matcher.pick ? this.matcher.pick.slot : -1;
    b.list.forEach((e, i) => {
      e.hit = pickSlot < 0 || (b.answers[pickSlot].hits || [])[i] === 1;
      /** @type {(number[] | undefined)[] | null} */
      let found = null;
      b.answers.forEach((a, slot) => { const f = a.found && a.found[i]; if (f) (found || (found = []))[slot] = f; });
      e.found = found;
    });
    this.judged(b.lastN);
  }

  /** The next pattern of batch b gets REGEX_BUDGET_MS from now. @param {Batch} b */
  armBudget(b) {
    const slot = b.answers.length, due = now() + REGEX_BUDGET_MS;
    let lookedAgain = false;
    const check = () => {
      if (this.judge.batch !== b) return;
      // A timer that runs late means this thread was busy: the answer may be queued behind it.
      if (!lookedAgain && now() - due > 50) { lookedAgain = true; b.timer = window.setTimeout(check, 0); return; }
      const owner = this.matcher.work[slot].owner;
      this.stop();
      this.markSlow([owner], TOO_SLOW);
    };
    clearTimeout(b.timer);
    b.timer = window.setTimeout(check, REGEX_BUDGET_MS);
  }
  /** @param {string} why */
  workerFailed(why) {
    const owners = this.matcher.work.map((w) => w.owner);
    this.stop();
    this.markSlow(owners, { label: 'Regex unavailable', why: 'regex matching is unavailable: ' + why });
  }
  /** Leave these patterns out (the filter's or rules), and let the view say why and redraw.
   *  @param {(FilterState | Rule)[]} owners @param {Slow} slow */
  markSlow(owners, slow) {
    for (const o of owners) {
      o.slow = slow;
      if (o === this.filter) this.filter.slowKey = this.key();
    }
    this.hooks.slow();
  }

  /** Judging has reached lastN. @param {number} lastN */
  judged(lastN) {
    const from = this.judge.judgedN;
    this.judge.judgedN = Math.max(from, lastN);
    this.hooks.judged(from, this.judge.judgedN);
    this.pumpSoon();
  }
}
