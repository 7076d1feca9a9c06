// @ts-check
/* tailcast dashboard: basics every module uses. Element lookup, number and time formatting, the
 * token (kept for this tab only), URLs relative to the page, and the settings (localStorage).
 * It knows nothing of lines, files or transports. */

/** The element with this id (the page's ids are fixed: index.html). */
export const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
/** The input, select or button with this id. */
export const $input = (/** @type {string} */ id) => /** @type {HTMLInputElement} */ (document.getElementById(id));
export const now = () => performance.now();
export const fmt = (/** @type {number} */ n) => n.toLocaleString('en-US');
export const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms));

/** @param {number | null | undefined} n */
export function fmtBytes(n) {
  if (n == null) return '';
  if (n < 1024) return n + ' B';
  const u = ['KiB', 'MiB', 'GiB', 'TiB'];
  let i = -1;
  do { n /= 1024; i++; } while (n >= 1024 && i < u.length - 1);
  return (n < 10 ? n.toFixed(1) : Math.round(n)) + ' ' + u[i];
}

const pad = (/** @type {number} */ n, w = 2) => String(n).padStart(w, '0');
/** A read time as the clock on this machine shows it, to the millisecond. @param {number} t */
export function fmtClock(t) {
  const d = new Date(t);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}
/** How long ago a read time was, short enough for a narrow column. @param {number} t */
export function fmtAgo(t) {
  const s = Math.max(0, Math.floor((Date.now() - t) / 1000));
  if (s < 1) return 'now';
  if (s < 60) return s + 's ago';
  if (s < 3600) return Math.floor(s / 60) + 'm ago';
  if (s < 172800) return Math.floor(s / 3600) + 'h ago';
  return Math.floor(s / 86400) + 'd ago';
}
/** The full local date and time, for a time cell's title. @param {number} t */
export function fmtFull(t) {
  const d = new Date(t);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${fmtClock(t)} (read by the server)`;
}

/** Reconnection delay after n failures: doubling from 250 ms up to 8 s, with jitter. @param {number} n */
export function backoff(n) {
  const base = Math.min(8000, 250 * Math.pow(2, Math.max(0, n - 1)));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

// ---------------------------------------------------------------- the token
// The token (a server started with --token) is kept for this tab only (sessionStorage) and never
// left in the page URL: a ?token= the page was opened with moves there and leaves the address
// bar. HTTP requests carry it as `Authorization: Bearer`; the WebSocket, which cannot send
// headers from a browser, as ?token= on the ws URL (what /ws accepts, docs/protocol.md).
const TOKEN_KEY = 'tailcast.token';
/** @type {string | null} */
let token = (() => { try { return sessionStorage.getItem(TOKEN_KEY); } catch { return null; } })();
export const getToken = () => token;
/** @param {string | null} t */
export function setToken(t) {
  token = t || null;
  try { if (token) sessionStorage.setItem(TOKEN_KEY, token); else sessionStorage.removeItem(TOKEN_KEY); } catch { /* private mode */ }
}
(() => {
  const u = new URL(location.href);
  if (!u.searchParams.has('token')) return;
  setToken(u.searchParams.get('token'));
  u.searchParams.delete('token');
  history.replaceState(history.state, '', u.pathname + u.search + u.hash);
})();
/** Headers of every data request: the token, if there is one. @returns {Record<string, string>} */
export const authHeaders = () => (token ? { Authorization: 'Bearer ' + token } : {});

/** A URL relative to the page (so it works under a reverse-proxy path prefix).
 *  @param {string} rel @param {Record<string, string | number | null | undefined>} [params] */
export function apiUrl(rel, params) {
  const u = new URL(rel, location.href);
  u.hash = '';
  u.search = '';
  if (params) for (const [k, v] of Object.entries(params)) if (v != null) u.searchParams.set(k, String(v));
  return u.toString();
}
export function wsUrl() {
  const u = new URL(apiUrl('ws'));
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  if (token) u.searchParams.set('token', token);
  return u.toString();
}

// ---------------------------------------------------------------- settings
/** @typedef {'off' | 'relative' | 'absolute'} TimeMode */
/** @typedef {{maxRows: number, keep: number, backlog: number, seq: boolean, time: TimeMode, theme: string}} Options */
/** @type {Options} */
export const DEFAULTS = { maxRows: 5000, keep: 20000, backlog: 1000, seq: true, time: 'off', theme: 'system' };
/** @type {TimeMode[]} */
export const TIME_MODES = ['off', 'relative', 'absolute'];
/** The settings, as stored (localStorage) and checked by clampOptions. @type {Options} */
export const options = Object.assign({}, DEFAULTS, (() => {
  try { return JSON.parse(localStorage.getItem('tailcast.options') || '{}'); } catch { return {}; }
})());
// The numeric settings and their bounds. A value typed in the settings is stored as entered or
// refused with a message (#opt-error), never silently replaced; "1 000" and "1,000" are 1000.
/** @type {Record<string, {lo: number, hi: number, label: string}>} */
export const LIMITS = {
  maxRows: { lo: 100, hi: 100000, label: 'Rows on screen' },
  keep: { lo: 1000, hi: 500000, label: 'Lines kept in memory' },
  backlog: { lo: 0, hi: 10000, label: 'Backlog lines' },
};
/** A whole number as typed, with thousands separators (spaces, commas, _ or ') allowed; else NaN.
 *  @param {unknown} v */
export function parseCount(v) {
  if (typeof v === 'number') return Number.isInteger(v) ? v : NaN;
  const t = String(v == null ? '' : v).trim().replace(/[\s\u00a0\u202f,_']/g, '');
  return /^[0-9]{1,9}$/.test(t) ? Number(t) : NaN;
}
export function clampOptions() {
  const int = (/** @type {unknown} */ v, /** @type {number} */ lo, /** @type {number} */ hi, /** @type {number} */ d) => {
    const n = parseCount(v);
    return Number.isFinite(n) ? Math.min(hi, Math.max(lo, n)) : d;
  };
  options.maxRows = int(options.maxRows, 100, 100000, DEFAULTS.maxRows);
  options.keep = Math.max(int(options.keep, 1000, 500000, DEFAULTS.keep), options.maxRows);
  options.backlog = int(options.backlog, 0, 10000, DEFAULTS.backlog);
  options.seq = options.seq !== false;
  if (!['system', 'light', 'dark'].includes(options.theme)) options.theme = 'system';
  if (!TIME_MODES.includes(options.time)) options.time = 'off';
}
clampOptions();
export function saveOptions() {
  try { localStorage.setItem('tailcast.options', JSON.stringify(options)); } catch { /* private mode */ }
}
/** Why value v (as typed) cannot be setting k, or null. @param {string} k @param {unknown} v */
export function optionError(k, v) {
  const lim = LIMITS[k];
  if (!lim) return null;
  const n = parseCount(v);
  if (!Number.isFinite(n)) return `${lim.label}: "${String(v).slice(0, 20)}" is not a whole number. Not saved.`;
  if (n < lim.lo || n > lim.hi) return `${lim.label} must be between ${fmt(lim.lo)} and ${fmt(lim.hi)}. Not saved.`;
  if (k === 'maxRows' && n > options.keep) return `Rows on screen (${fmt(n)}) cannot exceed the lines kept in memory (${fmt(options.keep)}): raise that first. Not saved.`;
  if (k === 'keep' && n < options.maxRows) return `Lines kept in memory (${fmt(n)}) cannot be fewer than the rows on screen (${fmt(options.maxRows)}). Not saved.`;
  return null;
}
