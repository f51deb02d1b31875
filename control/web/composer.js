// Layer 3 (views): the message composer: per-conversation drafts, Enter to
// send (turning the picked @names into mention tokens), typing notices, the
// emoji picker and the attach buttons, paste and drop. The @ picker is in
// mentions.js, the upload itself in uploads.js, the send in outbox.js.

import { EMOJI } from './emoji.js';
import { toast } from './toasts.js';
import { $, $$, fitHeight, h } from './util.js';
import { draftOf, S } from './store.js';
import { queueSend } from './outbox.js';
import { sock } from './transport.js';
import { sendFile } from './uploads.js';
import { addPopover, closePopovers } from './dialogs.js';
import { closeMention, isMentionPickerOpen, mentionPickerKey, updateMentionPicker } from './mentions.js';

const TYPING_SEND_EVERY = 3000;

/** Keeps what is in the composer as the draft of `cid` (the conversation being left). */
export function saveDraft(cid) {
  if (!cid) return;
  draftOf(cid).text = $('#composer-input').value;
}

export function restoreDraft() {
  const d = S.drafts.get(S.current);
  const input = $('#composer-input');
  input.value = d ? d.text : '';
  fitHeight(input);
}

function sendText() {
  const c = S.convs.get(S.current);
  if (!c) return;
  const input = $('#composer-input');
  let text = input.value.replace(/^\s*\n/, '').trimEnd();
  if (!text.trim()) return;
  const d = draftOf(c.cid);
  const mentions = [];
  const picked = [...d.mentions].sort((a, b) => b.label.length - a.label.length);
  for (const m of picked) {
    if (!text.includes(m.label)) continue;
    if (m.id === 'all') {
      if (!mentions.includes('all')) mentions.push('all');
      continue;
    }
    text = text.split(m.label).join(`@[user_id:${m.id}]`);
    if (!mentions.includes(m.id)) mentions.push(m.id);
  }
  if (new TextEncoder().encode(text).length > 16000) {
    toast('This message is too long.', true);
    return;
  }
  queueSend(c, 'text', text, {}, mentions);
  input.value = '';
  d.text = '';
  d.mentions = [];
  fitHeight(input);
  closePopovers();
  input.focus();
}

function insertAtCursor(text) {
  const input = $('#composer-input');
  const start = input.selectionStart ?? input.value.length;
  const end = input.selectionEnd ?? input.value.length;
  input.setRangeText(text, start, end, 'end');
  input.dispatchEvent(new Event('input', { bubbles: true }));
  input.focus();
}

function maybeSendTyping() {
  const c = S.convs.get(S.current);
  if (!c || c.type !== 'single') return;
  const now = Date.now();
  if (now - S.lastTypingSent < TYPING_SEND_EVERY) return;
  if (sock.send({ type: 'typing', conversation_id: c.cid })) S.lastTypingSent = now;
}

// ---------- emoji ----------

function buildEmojiPicker() {
  const pop = $('#emoji-pop');
  const grid = h('div', { class: 'emoji-grid', role: 'grid' });
  for (const [e, name] of EMOJI) {
    grid.append(h('button', { type: 'button', title: name, 'aria-label': name, 'data-emoji': e, onclick: () => insertAtCursor(e) }, e));
  }
  pop.replaceChildren(grid);
  grid.addEventListener('keydown', (ev) => {
    const buttons = $$('button', grid);
    const i = buttons.indexOf(document.activeElement);
    if (i < 0) return;
    const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: 8, ArrowUp: -8 }[ev.key];
    if (step) {
      ev.preventDefault();
      const next = buttons[Math.max(0, Math.min(buttons.length - 1, i + step))];
      next.focus();
    }
  });
}

function toggleEmoji(open) {
  const pop = $('#emoji-pop');
  const show = open ?? pop.hidden;
  closePopovers();
  pop.hidden = !show;
  $('#emoji-btn').setAttribute('aria-expanded', String(show));
  if (show) $('button', pop).focus();
}

function closeEmoji() {
  $('#emoji-pop').hidden = true;
  $('#emoji-btn').setAttribute('aria-expanded', 'false');
}

export function wireComposer() {
  buildEmojiPicker();
  addPopover(closeEmoji);
  addPopover(closeMention);
  const input = $('#composer-input');
  input.addEventListener('keydown', (ev) => {
    if (mentionPickerKey(ev)) return;
    if (ev.key === 'Escape' && (isMentionPickerOpen() || !$('#emoji-pop').hidden)) {
      ev.preventDefault();
      closePopovers();
      return;
    }
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
      ev.preventDefault();
      sendText();
    }
  });
  input.addEventListener('input', () => {
    fitHeight(input);
    if (input.value) maybeSendTyping();
    updateMentionPicker();
  });
  input.addEventListener('click', () => updateMentionPicker());
  input.addEventListener('blur', () => setTimeout(() => {
    if (!$('#mention-pop').contains(document.activeElement)) closeMention();
  }, 150));
  $('#send-btn').addEventListener('click', sendText);
  $('#emoji-btn').addEventListener('click', (ev) => { ev.stopPropagation(); toggleEmoji(); });
  $('#emoji-pop').addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') {
      ev.preventDefault();
      toggleEmoji(false);
      $('#emoji-btn').focus();
    }
  });
  $('#at-btn').addEventListener('click', () => {
    const inp = $('#composer-input');
    const pos = inp.selectionStart ?? inp.value.length;
    const needsSpace = pos > 0 && !/\s/.test(inp.value[pos - 1]);
    inp.focus();
    inp.setSelectionRange(pos, pos);
    insertAtCursor(needsSpace ? ' @' : '@');
  });
  $('#image-btn').addEventListener('click', () => $('#image-input').click());
  $('#file-btn').addEventListener('click', () => $('#file-input').click());
  $('#image-input').addEventListener('change', (ev) => {
    const f = ev.target.files[0];
    ev.target.value = '';
    sendFile(f, 'image');
  });
  $('#file-input').addEventListener('change', (ev) => {
    const f = ev.target.files[0];
    ev.target.value = '';
    sendFile(f, 'file');
  });
  // Paste or drop an image/file into the chat.
  input.addEventListener('paste', (ev) => {
    const f = ev.clipboardData && ev.clipboardData.files && ev.clipboardData.files[0];
    if (f) {
      ev.preventDefault();
      sendFile(f, f.type.startsWith('image/') ? 'image' : 'file');
    }
  });
  $('#chat-pane').addEventListener('dragover', (ev) => { if (ev.dataTransfer.types.includes('Files')) ev.preventDefault(); });
  $('#chat-pane').addEventListener('drop', (ev) => {
    const f = ev.dataTransfer.files && ev.dataTransfer.files[0];
    if (!f) return;
    ev.preventDefault();
    sendFile(f, f.type.startsWith('image/') ? 'image' : 'file');
  });
  document.addEventListener('click', (ev) => {
    if (!ev.target.closest('#emoji-pop, #emoji-btn')) closeEmoji();
  });
}
