/* tailcast dashboard: the Worker that runs the user's regexes (the filter, highlight rules) on
 * batches of line texts for filter.js.
 *
 * Why a Worker: the browser's regex engine backtracks, so one pattern can take exponential time
 * on one line (/^(a+)+$/ on "aaaa...a!" runs for hours). Here that stalls only this worker; filter.js
 * gives every pattern a time budget per batch and terminates and replaces a worker that is over
 * it. Owns: matching only; it keeps no state but compiled patterns.
 *
 * Messages (one batch at a time):
 *   in   {id, texts: [string], work: [{source, flags, test, ranges}]}
 *   out  {id, type: 'start'} at once, then for each pattern of work, in order,
 *        {id, type: 'slot', hits, found}
 *        hits   (when test) Uint8Array, 1 where the pattern matches the text (an empty match counts)
 *        found  (when ranges) per text null or [start, end, ...]: its first MAX_MARKS non-empty
 *               matches, as filter.js lays marks (filter.js has the same loop for plain words)
 */
'use strict';

const MAX_MARKS = 64;
const compiled = new Map();

function compile(source, flags) {
  const key = flags + '/' + source;
  let re = compiled.get(key);
  if (!re) {
    if (compiled.size > 64) compiled.clear();
    // exec() loops below need the global flag (without it lastIndex is ignored).
    re = new RegExp(source, flags.includes('g') ? flags : flags + 'g');
    compiled.set(key, re);
  }
  return re;
}

/** Whether re matches text; pushes up to MAX_MARKS non-empty matches onto out (if given). */
function scan(re, text, out) {
  re.lastIndex = 0;
  if (!out) return re.test(text);
  let hit = false, m;
  while (out.length < 2 * MAX_MARKS && (m = re.exec(text))) {
    hit = true;
    if (m[0].length === 0) { re.lastIndex++; continue; }
    out.push(m.index, m.index + m[0].length);
  }
  return hit;
}

self.onmessage = (ev) => {
  const { id, texts, work } = ev.data;
  self.postMessage({ id, type: 'start' });
  for (const w of work) {
    const re = compile(w.source, w.flags);
    const hits = w.test ? new Uint8Array(texts.length) : null;
    const found = w.ranges ? new Array(texts.length).fill(null) : null;
    for (let i = 0; i < texts.length; i++) {
      const out = found ? [] : null;
      const hit = scan(re, texts[i], out);
      if (hits && hit) hits[i] = 1;
      if (out && out.length) found[i] = out;
    }
    self.postMessage({ id, type: 'slot', hits, found }, hits ? [hits.buffer] : []);
  }
};
