// @ts-check
/* tailcast dashboard: the extra panes of a split view (2 to 4 views side by side, stacked on a
 * narrow screen). The first pane is the page's own view (the top bar's filter and pause are
 * its); each extra pane has a bar of its own: its file, its filter, its pause, and a close
 * button. A pane is a View (view.js) with those controls; app.js routes lines to every pane and
 * keeps the layout in the URL (url.js). */

import { View } from './view.js';
import { files } from './store.js';

/** @typedef {import('./url.js').HashState} HashState */

export const MAX_PANES = 4;

/** @param {string} tag @param {string} [cls] @param {string} [text] */
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

export class Pane {
  /** @param {number} number the pane's place (2, 3, 4), as the URL names it
   *  @param {{changed: (pane: Pane) => void, close: (pane: Pane) => void, pick: (pane: Pane, ids: string[]) => void}} hooks */
  constructor(number, hooks) {
    this.number = number;
    this.hooks = hooks;
    const root = el('section', 'viewer pane');
    root.dataset.pane = String(number);
    const bar = el('div', 'pane-bar');
    this.select = /** @type {HTMLSelectElement} */ (el('select', 'pane-file'));
    this.select.setAttribute('aria-label', `File of pane ${number}`);
    this.filterInput = /** @type {HTMLInputElement} */ (el('input', 'pane-filter'));
    this.filterInput.type = 'search';
    this.filterInput.placeholder = 'Filter';
    this.filterInput.setAttribute('aria-label', `Filter of pane ${number}`);
    this.filterInput.spellcheck = false;
    this.pauseBtn = /** @type {HTMLButtonElement} */ (el('button', 'btn pane-pause', 'Pause'));
    this.pauseBtn.type = 'button';
    this.pauseBtn.setAttribute('aria-pressed', 'false');
    const close = /** @type {HTMLButtonElement} */ (el('button', 'icon-btn pane-close', '\u00d7'));
    close.type = 'button';
    close.title = 'Close this pane';
    close.setAttribute('aria-label', `Close pane ${number}`);
    bar.append(this.select, this.filterInput, this.pauseBtn, close);
    const banner = el('div', 'banner');
    banner.hidden = true;
    const bannerText = el('span');
    const resume = /** @type {HTMLButtonElement} */ (el('button', 'link-btn', 'Resume'));
    resume.type = 'button';
    banner.append(bannerText, resume);
    const log = el('div', 'log wrap');
    log.tabIndex = 0;
    log.setAttribute('aria-label', `Log lines of pane ${number}`);
    const rows = el('div', 'rows'), pending = el('div', 'pending'), empty = el('div', 'empty');
    pending.hidden = true; empty.hidden = true;
    log.append(rows, pending, empty);
    const jump = /** @type {HTMLButtonElement} */ (el('button', 'jump'));
    jump.type = 'button';
    jump.hidden = true;
    const jumpLabel = el('span', '', 'new lines');
    jump.append(jumpLabel);
    root.append(bar, banner, log, jump);
    this.root = root;
    this.log = log;
    this.view = new View({ log, rows, pending, empty, jump, jumpLabel, banner, bannerText }, {
      slow: () => this.syncFilter(),
      paused: (p) => { this.pauseBtn.setAttribute('aria-pressed', String(p)); this.pauseBtn.textContent = p ? 'Resume' : 'Pause'; },
    });
    let timer = 0;
    this.filterInput.addEventListener('input', () => {
      clearTimeout(timer);
      timer = window.setTimeout(() => this.applyFilter(), 120);
    });
    this.pauseBtn.addEventListener('click', () => this.view.setPaused(!this.view.paused));
    resume.addEventListener('click', () => this.view.setPaused(false));
    jump.addEventListener('click', () => this.view.jumpToEnd());
    close.addEventListener('click', () => hooks.close(this));
    this.select.addEventListener('change', () => { if (this.select.value) hooks.pick(this, [this.select.value]); });
  }

  /** The pane's place changed (a pane before it closed). @param {number} number */
  renumber(number) {
    this.number = number;
    this.root.dataset.pane = String(number);
    this.select.setAttribute('aria-label', `File of pane ${number}`);
    this.filterInput.setAttribute('aria-label', `Filter of pane ${number}`);
    this.log.setAttribute('aria-label', `Log lines of pane ${number}`);
    const close = this.root.querySelector('.pane-close');
    if (close) close.setAttribute('aria-label', `Close pane ${number}`);
  }

  applyFilter() {
    const f = this.view.flt.filter;
    f.q = this.filterInput.value;
    this.view.flt.compile();
    this.syncFilter();
    this.view.rebuild();
    this.hooks.changed(this);
  }
  syncFilter() {
    const f = this.view.flt.filter;
    if (this.filterInput.value !== f.q) this.filterInput.value = f.q;
    this.filterInput.classList.toggle('invalid', !!(f.error || f.slow));
    this.filterInput.title = f.error ? 'Invalid regex: ' + f.error : f.slow ? f.slow.why : '';
  }

  /** The file picker lists every file; the pane's own is chosen (several: "N files"). @param {string[]} order */
  renderFiles(order) {
    const ids = this.view.ids;
    this.select.textContent = '';
    if (ids.length > 1) {
      const o = /** @type {HTMLOptionElement} */ (el('option', '', `${ids.length} files merged`));
      o.value = '';
      o.disabled = true;
      this.select.append(o);
    }
    for (const id of order) {
      const o = /** @type {HTMLOptionElement} */ (el('option', '', id));
      o.value = id;
      const f = files.get(id);
      if (f && f.path) o.title = f.path;
      this.select.append(o);
    }
    this.select.value = ids.length === 1 ? ids[0] : '';
  }

  /** The pane's part of the URL. @returns {HashState} */
  state() {
    const f = this.view.flt.filter;
    return { files: this.view.ids.slice(), q: f.q, regex: f.regex, caseSensitive: f.caseSensitive, invert: f.invert, highlights: [], wrap: null };
  }
  /** Takes the filter of a URL's pane (its files are set by app.js). @param {HashState} s */
  setFilterState(s) {
    const f = this.view.flt.filter;
    f.q = s.q; f.regex = s.regex; f.caseSensitive = s.caseSensitive; f.invert = s.invert;
    this.view.flt.compile();
    this.syncFilter();
  }
}
