// Layer 3 (views): what every dialog shares (the close buttons, a click on the
// backdrop) and every popover (they close together), the confirm dialog and
// the full-size image preview. Below the other views, which open dialogs.

import { $, $$ } from './util.js';

// The emoji picker, the @ picker and the + menu: opening one, sending, or
// Escape closes them all. Each owner registers how its popover closes.
const popoverClosers = [];
export function addPopover(close) {
  popoverClosers.push(close);
}
export function closePopovers() {
  for (const close of popoverClosers) close();
}

export function openDialog(sel) {
  const dlg = $(sel);
  if (!dlg.open) dlg.showModal();
  return dlg;
}

export function confirmDialog(title, text, okLabel = 'OK') {
  const dlg = $('#dlg-confirm');
  $('#dlg-confirm-title').textContent = title;
  $('#confirm-text').textContent = text;
  $('#confirm-ok').textContent = okLabel;
  dlg.returnValue = '';
  openDialog('#dlg-confirm');
  $('#confirm-cancel').focus();
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
  });
}

export function openPreview(src, name) {
  if (!src) return;
  $('#preview-img').src = src;
  $('#preview-img').alt = name;
  $('#preview-open').href = src;
  $('#preview-open').setAttribute('download', name);
  openDialog('#dlg-preview');
}

export function wireDialogs() {
  for (const dlg of $$('dialog')) {
    dlg.addEventListener('click', (ev) => {
      if (ev.target.closest('[data-close]')) dlg.close();
      else if (ev.target === dlg && dlg.id !== 'dlg-kicked') {
        const r = dlg.getBoundingClientRect();
        const inside = ev.clientX >= r.left && ev.clientX <= r.right && ev.clientY >= r.top && ev.clientY <= r.bottom;
        if (!inside) dlg.close();
      }
    });
  }
  $('#dlg-preview').addEventListener('close', () => { $('#preview-img').removeAttribute('src'); });
}
