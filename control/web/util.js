// Layer 0 (utilities): small DOM, formatting and storage helpers. They hold no
// state of the app and import nothing of it, so every layer may use them; the
// browser is touched only when a helper is called, never when it is loaded.

/** Creates an element: h('div', {class: 'x', onclick: fn, 'data-testid': 'y'}, child, 'text'). */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') el.className = value;
      else if (key === 'text') el.textContent = value;
      else if (key === 'style' && typeof value === 'object') {
        for (const [k, v] of Object.entries(value)) {
          if (k.startsWith('--')) el.style.setProperty(k, v);
          else el.style[k] = v;
        }
      }
      else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
      else if (key in el && typeof value !== 'string') el[key] = value;
      else el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const SVG = 'http://www.w3.org/2000/svg';

/** An icon from the sprite in index.html. */
export function icon(name, cls = 'icon') {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', cls);
  svg.setAttribute('aria-hidden', 'true');
  const use = document.createElementNS(SVG, 'use');
  use.setAttribute('href', `#i-${name}`);
  svg.append(use);
  return svg;
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

// The phone layout (one column: the list or the chat), as the stylesheet has it.
const PHONE_LAYOUT = '(max-width: 720px)';
export const isPhone = () => matchMedia(PHONE_LAYOUT).matches;
export const onLayoutChange = (fn) => matchMedia(PHONE_LAYOUT).addEventListener('change', fn);

/** Grows a textarea with its text; the stylesheet's max-height stops it, then it scrolls. */
export function fitHeight(el) {
  el.style.height = 'auto';
  el.style.height = `${el.scrollHeight + 2}px`;
}

/**
 * Puts `items` ({key, sig, make}) into `container` in order, reusing the node
 * of a key whose signature did not change. `cache` maps key -> {sig, node}.
 */
export function reconcile(container, items, cache) {
  const seen = new Set();
  let prev = null;
  for (const item of items) {
    let entry = cache.get(item.key);
    let hadFocus = false;
    if (!entry || entry.sig !== item.sig) {
      const node = item.make();
      if (entry) {
        hadFocus = entry.node.contains(document.activeElement);
        entry.node.remove();
      }
      entry = { sig: item.sig, node };
      cache.set(item.key, entry);
    }
    seen.add(item.key);
    const expected = prev ? prev.nextSibling : container.firstChild;
    if (expected !== entry.node) container.insertBefore(entry.node, expected);
    if (hadFocus && typeof entry.node.focus === 'function') entry.node.focus({ preventScroll: true });
    prev = entry.node;
  }
  for (const [key, entry] of cache) {
    if (!seen.has(key)) {
      entry.node.remove();
      cache.delete(key);
    }
  }
}

// ---------- formatting ----------

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const weekdayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'short' });
const dateFmt = new Intl.DateTimeFormat(undefined, { year: '2-digit', month: 'numeric', day: 'numeric' });
const longDateFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

function startOfDay(ts) {
  const d = new Date(ts);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

export function dayKey(ts) {
  const d = new Date(ts);
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

export const fmtTime = (ts) => timeFmt.format(ts);
export const fmtFull = (ts) => fullFmt.format(ts);

/** A timestamp for the conversation list: time today, then Yesterday, weekday, date. */
export function fmtListTime(ts) {
  if (!ts) return '';
  const days = Math.round((startOfDay(Date.now()) - startOfDay(ts)) / 86400000);
  if (days <= 0) return timeFmt.format(ts);
  if (days === 1) return 'Yesterday';
  if (days < 7) return weekdayFmt.format(ts);
  return dateFmt.format(ts);
}

/** A day separator in a chat: Today, Yesterday, or the date. */
export function fmtDay(ts) {
  const days = Math.round((startOfDay(Date.now()) - startOfDay(ts)) / 86400000);
  if (days <= 0) return 'Today';
  if (days === 1) return 'Yesterday';
  const d = new Date(ts);
  if (d.getFullYear() === new Date().getFullYear()) return longDateFmt.format(ts);
  return new Intl.DateTimeFormat(undefined, { dateStyle: 'long' }).format(ts);
}

export function fmtSize(bytes) {
  const n = Number(bytes) || 0;
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(1)} GB`;
}

/** A random id for client_msg_id (randomUUID needs a secure context; fall back). */
export function uuid() {
  if (globalThis.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Only http(s) and same-origin paths may become a src/href. */
export function safeUrl(url) {
  if (typeof url !== 'string' || !url) return null;
  if (url.startsWith('/') && !url.startsWith('//')) return url;
  try {
    const u = new URL(url, location.href);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}

export function debounce(fn, ms) {
  let t;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

export const storage = {
  get(key, fallback = null) {
    try {
      const v = localStorage.getItem(key);
      return v === null ? fallback : JSON.parse(v);
    } catch {
      return fallback;
    }
  },
  set(key, value) {
    try { localStorage.setItem(key, JSON.stringify(value)); } catch { /* full or disabled */ }
  },
  remove(key) {
    try { localStorage.removeItem(key); } catch { /* disabled */ }
  },
};
