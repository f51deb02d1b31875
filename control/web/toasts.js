// Layer 0 (utilities): toasts, short notices at the bottom (errors stay
// longer). Any layer may report with them; they know nothing of the app's state.

import { ApiError } from './net.js';
import { $, h } from './util.js';

export function toast(text, error = false) {
  const box = $('#toasts');
  const el = h('div', { class: `toast${error ? ' error' : ''}`, 'data-testid': 'toast' }, text);
  box.append(el);
  // A popover is in the top layer: shown again, it lands above any open dialog.
  if (box.showPopover) {
    if (box.matches(':popover-open')) box.hidePopover();
    box.showPopover();
  }
  setTimeout(() => {
    el.remove();
    if (!box.children.length && box.hidePopover && box.matches(':popover-open')) box.hidePopover();
  }, error ? 5000 : 2600);
}

export function toastError(e, what) {
  const msg = e instanceof ApiError && e.status === 413 ? 'The file is too large.' : e.message;
  toast(`${what}: ${msg}`, true);
}
