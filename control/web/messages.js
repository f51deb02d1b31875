// Layer 3 (views): how one message looks: a bubble in the chat (text with
// mentions and links, photo, file, location; its sent/read/failed state) and
// the one-line preview in the conversation list. Mentions travel as
// @[user_id:N] tokens and are shown with the member's current name.

import { $, fmtFull, fmtSize, fmtTime, h, icon, safeUrl } from './util.js';
import { isSystem, myId, userName } from './store.js';
import { discardSend, retrySend } from './outbox.js';
import { userAvatar } from './avatars.js';
import { openPreview } from './dialogs.js';
import { messageMenu } from './message-menu.js';

export function previewText(c, m) {
  if (!m) return '';
  let body;
  switch (m.message_type) {
    case 'image': body = '📷 Photo'; break;
    case 'file': body = `📎 ${fileName(m)}`; break;
    case 'location': body = `📍 ${m.content}`; break;
    // The list's last entry may be a change to an earlier message.
    case 'edit': body = `✎ ${plainText(m.content)}`; break;
    case 'recall': body = 'Message recalled'; break;
    default: body = plainText(m.content); break;
  }
  if (m.recalled) body = 'Message recalled';
  if (isSystem(m)) return body;
  if (m.from_user_id === myId()) return `You: ${body}`;
  if (c.type === 'group') return `${userName(m.from_user_id)}: ${body}`;
  return body;
}

const TOKEN_RE = /@\[user_id:(\d+|all)\]/g;

export function plainText(text) {
  return String(text || '').replace(TOKEN_RE, (_, id) => (id === 'all' ? '@all' : `@${userName(id)}`));
}

function fileName(m) {
  const md = m.metadata || {};
  return md.filename || md.name || 'File';
}

export function mentionNames(text) {
  const out = [];
  String(text || '').replace(TOKEN_RE, (_, id) => { out.push(id === 'all' ? 'all' : userName(id)); return ''; });
  return out.join(',');
}

export function messageRow(c, m, o) {
  const status = o.status;
  const statusIcon = o.mine
    ? (status === 'pending' || status === 'uploading' ? h('span', { title: 'Sending', 'aria-label': 'Sending' }, icon('clock'))
      : status === 'failed' ? h('span', { title: 'Not sent', 'aria-label': 'Not sent' }, icon('alert'))
        : h('span', { title: o.readByPeer ? 'Read' : 'Sent', 'aria-label': o.readByPeer ? 'Read' : 'Sent' }, icon(o.readByPeer ? 'checks' : 'check')))
    : null;
  const meta = h('span', { class: 'meta' },
    m.edited_at && !m.recalled ? h('span', { class: 'edited', title: `Edited ${fmtFull(m.edited_at)}`, 'data-testid': 'message-edited' }, 'edited') : null,
    h('time', { datetime: new Date(m.timestamp).toISOString(), title: fmtFull(m.timestamp) }, fmtTime(m.timestamp)), statusIcon);
  let bubble;
  if (m.recalled) {
    bubble = h('div', { class: 'bubble recalled' }, h('div', { class: 'msg-text', 'data-testid': 'message-recalled' }, 'This message was recalled'), meta);
  } else if (m.message_type === 'image') {
    bubble = h('div', { class: 'bubble media' }, imageThumb(m, status === 'uploading'), meta);
  } else if (m.message_type === 'file') {
    bubble = h('div', { class: 'bubble' }, fileCard(m, status === 'uploading'), meta);
  } else if (m.message_type === 'location') {
    const md = m.metadata || {};
    const href = Number.isFinite(md.latitude) && Number.isFinite(md.longitude)
      ? `https://www.openstreetmap.org/?mlat=${md.latitude}&mlon=${md.longitude}` : null;
    bubble = h('div', { class: 'bubble' }, h('div', { class: 'msg-text' }, '📍 ',
      href ? h('a', { href, target: '_blank', rel: 'noopener noreferrer' }, m.content) : m.content), meta);
  } else if (m.message_type === 'text') {
    bubble = h('div', { class: 'bubble' }, richText(m.content), meta);
  } else {
    bubble = h('div', { class: 'bubble' }, h('div', { class: 'msg-text' }, m.content || `[${m.message_type} message]`), meta);
  }
  const col = h('div', { class: 'msg-col' },
    o.showName ? h('div', { class: 'msg-sender', 'data-testid': 'message-sender' }, o.senderName) : null,
    bubble,
    status === 'failed' ? h('div', { class: 'msg-failed' },
      `Not sent${o.entry && o.entry.error ? `: ${o.entry.error}` : ''}.`,
      h('button', { type: 'button', onclick: () => retrySend(m.client_msg_id), 'data-testid': 'retry-send' }, 'Retry'),
      h('button', { type: 'button', onclick: () => discardSend(m.client_msg_id) }, 'Delete')) : null,
    o.showRead ? h('div', { class: 'read-mark', 'data-testid': 'read-mark' }, 'Read') : null);
  const showAvatar = c.type === 'group' && !o.mine;
  return h('div', {
    class: `msg${o.mine ? ' me' : ''}${o.first ? ' first' : ''}`,
    'data-testid': 'message',
    'data-seq': m.seq_id || undefined,
    'data-status': status,
    'data-from': o.mine ? 'me' : 'other',
    'data-type': m.message_type,
  },
  showAvatar ? h('div', { class: 'avatar-col' }, o.first ? userAvatar(m.from_user_id, 'sm') : null) : null,
  col,
  status === 'sent' && !m.recalled && m.message_id ? messageMenu(c, m) : null);
}

const URL_RE = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;
const EMOJI_ONLY_RE = /^(?:\p{Extended_Pictographic}|\p{Emoji_Component}|\uFE0F|\u200D|\s){1,12}$/u;

function richText(text) {
  const el = h('div', { class: 'msg-text', 'data-testid': 'message-text' });
  const str = String(text || '');
  if (EMOJI_ONLY_RE.test(str) && /\p{Extended_Pictographic}/u.test(str) && !/\d/.test(str)) el.classList.add('jumbo');
  let last = 0;
  const parts = [];
  const re = new RegExp(`${TOKEN_RE.source}|${URL_RE.source}|@all\\b`, 'g');
  for (const match of str.matchAll(re)) {
    if (match.index > last) parts.push(str.slice(last, match.index));
    const tok = match[0];
    if (tok.startsWith('@[')) {
      const id = match[1];
      const isMe = id === myId() || id === 'all';
      parts.push(h('span', { class: `mention${isMe ? ' me' : ''}`, 'data-user-id': id, 'data-testid': 'mention' }, id === 'all' ? '@all' : `@${userName(id)}`));
    } else if (tok === '@all') {
      parts.push(h('span', { class: 'mention me', 'data-user-id': 'all', 'data-testid': 'mention' }, '@all'));
    } else {
      const href = safeUrl(tok);
      parts.push(href ? h('a', { href, target: '_blank', rel: 'noopener noreferrer' }, tok) : tok);
    }
    last = match.index + tok.length;
  }
  if (last < str.length) parts.push(str.slice(last));
  el.append(...parts.map((p) => (typeof p === 'string' ? document.createTextNode(p) : p)));
  return el;
}

function fitBox(w, hgt, max = 260) {
  if (!(w > 0 && hgt > 0)) return { width: 220, height: 160 };
  const scale = Math.min(1, max / Math.max(w, hgt));
  return { width: Math.max(60, Math.round(w * scale)), height: Math.max(60, Math.round(hgt * scale)) };
}

function imageThumb(m, uploading) {
  const md = m.metadata || {};
  const { width, height } = fitBox(Number(md.width), Number(md.height));
  const src = uploading ? m.content : safeUrl(m.content);
  const img = h('img', { src: src || undefined, alt: md.filename || 'Photo', width, height, decoding: 'async', 'data-testid': 'message-image' });
  img.addEventListener('load', () => {
    const box = $('#messages');
    if (box.scrollHeight - box.scrollTop - box.clientHeight < 200) box.scrollTop = box.scrollHeight;
  });
  return h('button', {
    type: 'button',
    class: 'thumb',
    style: { width: `${width}px`, height: `${height}px` },
    'aria-label': 'Open the photo',
    disabled: uploading || !src,
    onclick: () => openPreview(src, md.filename || 'photo'),
  }, img);
}

function fileCard(m, uploading) {
  const md = m.metadata || {};
  const name = fileName(m);
  const href = uploading ? null : safeUrl(m.content);
  return h('div', { class: 'file-card', 'data-testid': 'message-file' },
    h('span', { class: 'file-icon' }, icon('file')),
    h('span', { class: 'file-info' },
      h('span', { class: 'file-name', title: name, 'data-testid': 'file-name' }, name),
      h('span', { class: 'file-size', 'data-testid': 'file-size' }, uploading ? 'Uploading…' : fmtSize(md.size))),
    href ? h('a', { class: 'file-dl', href, download: name, 'aria-label': `Download ${name}`, title: 'Download', 'data-testid': 'file-download' }, icon('download')) : null);
}
