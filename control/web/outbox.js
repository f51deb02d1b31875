// Layer 2 (services): sends not yet acked by the server. Each keeps its
// client_msg_id and frame in memory and in localStorage (per user), so it
// survives a reload or an outage; it is sent again, with the same id, after a
// reconnect (sync.js) or when its ack is overdue; the server dedups by that
// id. An ack or the stored message itself (history.js) removes it; a refused
// send stays as failed for retry or delete.

import { storage, uuid } from './util.js';
import { sock } from './transport.js';
import { changed, ensureConv, myId, S } from './store.js';

const ACK_TIMEOUT = 8000;

export const outboxKey = () => `gochat.outbox.${myId()}`;

export function loadOutbox() {
  const saved = storage.get(outboxKey(), []);
  S.outbox = Array.isArray(saved) ? saved.filter((e) => e && e.client_msg_id && e.frame) : [];
  for (const e of S.outbox) {
    e.sentAt = 0;
    const f = e.frame;
    ensureConv(e.cid, f.group_id ? { type: 'group', group_id: f.group_id } : { type: 'single', peer_user_id: f.to_user_id });
  }
}

export function saveOutbox() {
  storage.set(outboxKey(), S.outbox.map(({ sentAt, ...rest }) => rest));
}

export function dropOutbox(cmid) {
  const i = S.outbox.findIndex((e) => e.client_msg_id === cmid);
  if (i >= 0) {
    S.outbox.splice(i, 1);
    saveOutbox();
  }
}

export function flushOutbox() {
  if (!sock.isOpen) return;
  for (const e of S.outbox) {
    if (e.status !== 'pending') continue;
    if (sock.send(e.frame)) e.sentAt = Date.now();
  }
}

/** Unacked for too long while connected: send again, same id (app.js runs this every few seconds). */
export function resendOverdue() {
  if (!sock.isOpen) return;
  const now = Date.now();
  for (const e of S.outbox) {
    if (e.status === 'pending' && (!e.sentAt || now - e.sentAt > ACK_TIMEOUT)) {
      if (sock.send(e.frame)) e.sentAt = now;
    }
  }
}

export function queueSend(c, messageType, content, metadata = {}, mentions = []) {
  const frame = {
    type: 'send',
    client_msg_id: uuid(),
    message_type: messageType,
    content,
    metadata,
    mentions,
  };
  if (c.type === 'group') frame.group_id = c.group_id;
  else frame.to_user_id = c.peer_user_id;
  const entry = { client_msg_id: frame.client_msg_id, cid: c.cid, frame, created: Date.now(), status: 'pending', sentAt: 0 };
  S.outbox.push(entry);
  saveOutbox();
  if (sock.send(frame)) entry.sentAt = Date.now();
  S.stickToBottom = true;
  changed();
}

export function retrySend(cmid) {
  const e = S.outbox.find((x) => x.client_msg_id === cmid);
  if (!e) return;
  e.status = 'pending';
  e.error = null;
  e.sentAt = 0;
  saveOutbox();
  flushOutbox();
  changed();
}

export function discardSend(cmid) {
  dropOutbox(cmid);
  changed();
}
