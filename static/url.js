// @ts-check
/* tailcast dashboard: the URL hash, so that a link reproduces the view.
 *   #file=ID[&file=ID2...]&q=TEXT&re=1&case=1&inv=1&hl=C:PATTERN[&hl=...]&wrap=0
 *   (C = colour 0..5; PATTERN in slashes is a regex; several file= is the merged view)
 * A split view adds its other panes (2 to 4) with the same keys behind the pane's number:
 *   &2.file=ID&2.q=TEXT&2.re=1&2.case=1&2.inv=1&3.file=...
 * Parsing and writing only: what the state means is the UI's. */

/** @typedef {{files: string[], q: string, regex: boolean, caseSensitive: boolean, invert: boolean,
 *             highlights: {pattern: string, color: number}[], wrap: boolean | null}} HashState */

export const HL_COLORS = 6;

/** The other panes of a split view (2, 3, 4), in order; a pane without a file is left out.
 *  @param {string} hash @returns {HashState[]} */
export function parsePanes(hash) {
  const p = new URLSearchParams(hash.replace(/^#/, ''));
  /** @type {HashState[]} */
  const out = [];
  for (let k = 2; k <= 4; k++) {
    const sub = new URLSearchParams();
    for (const [key, v] of p) if (key.startsWith(k + '.')) sub.append(key.slice(String(k).length + 1), v);
    const s = parseParams(sub);
    if (s.files.length) out.push(s);
  }
  return out;
}

/** The view a hash describes (the first pane of a split view). @param {string} hash @returns {HashState} */
export function parseHash(hash) {
  return parseParams(new URLSearchParams(hash.replace(/^#/, '')));
}

/** @param {URLSearchParams} p @returns {HashState} */
function parseParams(p) {
  const wrap = p.get('wrap');
  return {
    files: p.getAll('file').filter(Boolean),
    q: p.get('q') || '',
    regex: p.get('re') === '1',
    caseSensitive: p.get('case') === '1',
    invert: p.get('inv') === '1',
    highlights: p.getAll('hl').map((s) => {
      const m = /^([0-9]):(.*)$/s.exec(s);
      return { pattern: m ? m[2] : s, color: m ? Number(m[1]) % HL_COLORS : 0 };
    }).filter((h) => h.pattern),
    wrap: wrap == null ? null : wrap !== '0',
  };
}

/** The hash (without '#') of a view and the other panes of a split view.
 *  @param {HashState} s @param {HashState[]} [panes] */
export function formatHash(s, panes = []) {
  const p = new URLSearchParams();
  const put = (/** @type {HashState} */ v, /** @type {string} */ pre) => {
    for (const id of v.files) p.append(pre + 'file', id);
    if (v.q) p.set(pre + 'q', v.q);
    if (v.regex) p.set(pre + 're', '1');
    if (v.caseSensitive) p.set(pre + 'case', '1');
    if (v.invert) p.set(pre + 'inv', '1');
    for (const h of v.highlights) p.append(pre + 'hl', h.color + ':' + h.pattern);
  };
  put(s, '');
  if (s.wrap === false) p.set('wrap', '0');
  panes.forEach((v, i) => put(v, `${i + 2}.`));
  return p.toString();
}

/** Replaces the page's hash (no history entry) if it differs. @param {string} s */
export function setHash(s) {
  if (s !== location.hash.replace(/^#/, '')) history.replaceState(null, '', s ? '#' + s : location.pathname + location.search);
}
