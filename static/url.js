// @ts-check
/* tailcast dashboard: the URL hash, so that a link reproduces the view.
 *   #file=ID[&file=ID2...]&q=TEXT&re=1&case=1&inv=1&hl=C:PATTERN[&hl=...]&wrap=0
 *   (C = colour 0..5; PATTERN in slashes is a regex; several file= is the merged view)
 * Parsing and writing only: what the state means is the UI's. */

/** @typedef {{files: string[], q: string, regex: boolean, caseSensitive: boolean, invert: boolean,
 *             highlights: {pattern: string, color: number}[], wrap: boolean | null}} HashState */

export const HL_COLORS = 6;

/** The view a hash describes. @param {string} hash @returns {HashState} */
export function parseHash(hash) {
  const p = new URLSearchParams(hash.replace(/^#/, ''));
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

/** The hash (without '#') of a view. @param {HashState} s */
export function formatHash(s) {
  const p = new URLSearchParams();
  for (const id of s.files) p.append('file', id);
  if (s.q) p.set('q', s.q);
  if (s.regex) p.set('re', '1');
  if (s.caseSensitive) p.set('case', '1');
  if (s.invert) p.set('inv', '1');
  for (const h of s.highlights) p.append('hl', h.color + ':' + h.pattern);
  if (s.wrap === false) p.set('wrap', '0');
  return p.toString();
}

/** Replaces the page's hash (no history entry) if it differs. @param {string} s */
export function setHash(s) {
  if (s !== location.hash.replace(/^#/, '')) history.replaceState(null, '', s ? '#' + s : location.pathname + location.search);
}
