// Layer 2 (services): each conversation's copy of its messages, kept complete.
// Messages are kept per conversation keyed by seq_id, so a frame, an ack and a
// pull of the same message merge into one, in seq order whatever order they
// came in. The newest page is loaded on first open, older pages on request,
// and everything after the last contiguous seq is pulled on a reconnect, a gap
// or a notify. Also the read cursor, which waits for the socket when it is down,
// and changes to messages (PROTOCOL v1.1): an `edit` or `recall` entry takes
// its seq like any message and changes the message it names; a message deleted
// for me comes back from history as a tombstone ({deleted: true}).

import { toastError } from './toasts.js';
import { ensureGroup, ensureMembers, loadGroups } from './loaders.js';
import { dropOutbox } from './outbox.js';
import { api, sock } from './transport.js';
import { changed, convOfMessage, isVisible, mentionsMe, myId, publish, S } from './store.js';

const PAGE_SIZE = 40;

/** An edit or a recall: an entry of its own that changes another message, not one to show. */
export const isChange = (m) => m.message_type === 'edit' || m.message_type === 'recall';

/** Applies an edit or recall entry to the message it names, if we hold it. */
function applyChange(c, e) {
  const { target_message_id: id, target_seq_id: seq, ...metadata } = e.metadata || {};
  const target = c.msgs.get(seq);
  if (!target || target.message_id !== id || target.recalled) return;
  const now = e.message_type === 'recall'
    ? { ...target, recalled: true, content: '', metadata: {} }
    : { ...target, content: e.content, metadata, edited_at: e.timestamp };
  c.msgs.set(seq, now);
  if (c.last_message && c.last_message.message_id === id) c.last_message = now;
}

/** Takes one stored message into its conversation (from a frame, an ack or a pull). */
export function ingest(m, live) {
  const c = convOfMessage(m);
  c.serverKnown = true;
  const me = myId();
  const change = isChange(m);
  if (m.from_user_id === me && m.client_msg_id) dropOutbox(m.client_msg_id);
  if (c.loaded || live) c.msgs.set(m.seq_id, m);
  if (change) applyChange(c, m);
  if (c.loaded) advance(c);
  if (m.seq_id > c.last_seq_id) {
    c.last_seq_id = m.seq_id;
    if (!change) c.last_message = m;
    if (m.from_user_id !== me && m.seq_id > c.read_seq_id) {
      if (isVisible(c)) {
        markReadSoon(c);
      } else if (!change) {
        c.unread += 1;
        if (mentionsMe(m)) c.unread_mentions += 1;
        if (live) publish('incoming', c, m);
      }
    }
  }
  const t = S.typing.get(c.cid);
  if (t && t.user_id === m.from_user_id) S.typing.delete(c.cid);
  if (m.message_type === 'system_group' && c.group_id) {
    ensureGroup(c.group_id, true);
    if (S.members.has(c.group_id) || S.current === c.cid) ensureMembers(c.group_id, true);
    if (live) loadGroups();
  }
}

/** Moves maxSeq over the messages held without a hole after it. */
function advance(c) {
  while (c.msgs.has(c.maxSeq + 1)) c.maxSeq += 1;
}

function historyUrl(c, param, seq, limit = PAGE_SIZE) {
  return `/conversations/${encodeURIComponent(c.cid)}/messages?${param}=${seq}&limit=${limit}`;
}

/** The newest page of a conversation, the first time it is opened. */
export function loadLatest(c) {
  if (c.loaded) return Promise.resolve();
  if (c.loading) return c.loading;
  c.loading = (async () => {
    if (!c.serverKnown && c.last_seq_id === 0) {
      c.loaded = true;
      c.minSeq = 1;
      return;
    }
    // Frames may arrive while the page is on its way: keep those above `top`.
    const top = c.last_seq_id;
    const res = await api.get(historyUrl(c, 'before_seq', top + 1));
    const page = res.messages || [];
    const live = [...c.msgs.values()].filter((m) => m.seq_id > top);
    c.msgs.clear();
    for (const m of page) c.msgs.set(m.seq_id, m);
    for (const m of live) c.msgs.set(m.seq_id, m);
    c.minSeq = page.length ? page[0].seq_id : top + 1;
    c.maxSeq = page.length ? page[page.length - 1].seq_id : top;
    if (c.minSeq <= 1) c.minSeq = 1;
    c.loaded = true;
    for (const m of page) {
      if (m.from_user_id === myId() && m.client_msg_id) dropOutbox(m.client_msg_id);
    }
    advance(c);
    await pullAfter(c);
  })()
    .catch((e) => { toastError(e, 'Could not load the messages'); })
    .finally(() => { c.loading = null; changed(); });
  return c.loading;
}

/** Everything after the last contiguous seq we hold (reconnect, gap, notify). */
export function pullAfter(c) {
  if (!c.loaded) return Promise.resolve();
  if (c.pulling) {
    c.pullAgain = true;
    return c.pulling;
  }
  c.pulling = (async () => {
    do {
      c.pullAgain = false;
      for (let guard = 0; guard < 50; guard++) {
        const res = await api.get(historyUrl(c, 'after_seq', c.maxSeq, 200));
        const page = res.messages || [];
        for (const m of page) ingest(m, false);
        if (page.length) c.maxSeq = Math.max(c.maxSeq, page[page.length - 1].seq_id);
        advance(c);
        if (!res.has_more || !page.length) break;
      }
    } while (c.pullAgain);
  })()
    .catch(() => { /* the next reconnect pulls again */ })
    .finally(() => { c.pulling = null; changed(); });
  return c.pulling;
}

/**
 * The page before the oldest one held, when there is one and none is on its
 * way: a promise of whether rows were added, else null (nothing started).
 */
export function loadOlder(c) {
  if (!c.loaded || c.loadingOlder || c.minSeq <= 1) return null;
  c.loadingOlder = true;
  return (async () => {
    try {
      const res = await api.get(historyUrl(c, 'before_seq', c.minSeq));
      const page = res.messages || [];
      for (const m of page) c.msgs.set(m.seq_id, m);
      c.minSeq = page.length ? Math.max(1, page[0].seq_id) : 1;
      return true;
    } catch (e) {
      toastError(e, 'Could not load older messages');
      return false;
    } finally {
      c.loadingOlder = false;
    }
  })();
}

export function markReadSoon(c) {
  clearTimeout(c.readTimer);
  c.readTimer = setTimeout(() => markRead(c), 150);
}

function markRead(c) {
  if (!isVisible(c)) return;
  const seq = Math.max(c.last_seq_id, c.maxSeq);
  const changedCursor = seq > c.read_seq_id || c.unread > 0 || c.unread_mentions > 0;
  if (!changedCursor || seq === 0) return;
  c.read_seq_id = Math.max(c.read_seq_id, seq);
  c.unread = 0;
  c.unread_mentions = 0;
  if (!sock.send({ type: 'read', conversation_id: c.cid, seq_id: seq })) {
    S.pendingReads.set(c.cid, seq);
  }
  changed();
}

/** Edits one of my text messages; the stored edit entry is taken in at once. */
export async function editMessage(c, m, content) {
  const path = `/conversations/${encodeURIComponent(c.cid)}/messages/${m.message_id}`;
  ingest(await api.patch(path, { content }), true);
  changed();
}

/** Recalls a message (mine, or a member's as a group's owner or admin). */
export async function recallMessage(c, m) {
  const path = `/conversations/${encodeURIComponent(c.cid)}/messages/${m.message_id}/recall`;
  ingest(await api.post(path), true);
  changed();
}

/** Who has read a message: {read_count, read_by?} (ids; absent in large groups). */
export function readReceipts(c, m) {
  return api.get(`/conversations/${encodeURIComponent(c.cid)}/messages/${m.message_id}/reads`);
}

/** Hides a message from my own history; a tombstone keeps its seq. */
export async function deleteForMe(c, m) {
  await api.del(`/conversations/${encodeURIComponent(c.cid)}/messages/${m.message_id}`);
  c.msgs.set(m.seq_id, { message_id: m.message_id, conversation_id: c.cid, seq_id: m.seq_id, deleted: true });
  changed();
}
