// Conversations as the server keeps them: the list with unread counts, each
// one's history (the newest page on first open, older pages on scroll up),
// pulls of everything after the last contiguous seq (reconnect, gap, notify),
// and the read cursor, which waits for the socket when it is down.

import { $, debounce } from './util.js';
import { renderHistoryEdge, renderMessages } from './chat.js';
import { dropOutbox } from './outbox.js';
import { api, sock } from './session.js';
import { render } from './shell.js';
import { ensureConv, isVisible, myId, S } from './store.js';
import { advance, ingest } from './sync.js';
import { toastError } from './toasts.js';

const PAGE_SIZE = 40;

export async function refreshConversations() {
  let res;
  try {
    res = await api.get('/conversations');
  } catch {
    return;
  }
  for (const s of res.conversations || []) {
    const c = ensureConv(s.conversation_id, {
      type: s.type, peer_user_id: s.peer_user_id, group_id: s.group_id, name: s.name,
    });
    c.serverKnown = true;
    if (s.name) c.name = s.name;
    // The peer's read cursor, so the "Read" mark survives a reload.
    c.peerRead = Math.max(c.peerRead, s.peer_read_seq_id || 0);
    if (s.last_seq_id >= c.last_seq_id) {
      c.last_seq_id = s.last_seq_id;
      c.read_seq_id = Math.max(c.read_seq_id, s.read_seq_id || 0);
      c.unread = s.unread || 0;
      c.unread_mentions = s.unread_mentions || 0;
      if (s.last_message) c.last_message = s.last_message;
    }
    if (c.loaded && !c.msgs.size && c.last_seq_id > 0 && !c.loading) {
      // Opened before we knew it had a history (e.g. right after start-up).
      c.loaded = false;
      if (S.current === c.cid) loadLatest(c);
    } else if (c.loaded && c.last_seq_id > c.maxSeq) {
      pullAfter(c);
    }
    if (isVisible(c)) markReadSoon(c);
  }
  render();
}
export const refreshConversationsSoon = debounce(refreshConversations, 300);

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
    .finally(() => { c.loading = null; render(); });
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
    .finally(() => { c.pulling = null; render(); });
  return c.pulling;
}

export async function loadOlder(c) {
  if (!c.loaded || c.loadingOlder || c.minSeq <= 1) return;
  c.loadingOlder = true;
  renderHistoryEdge(c);
  const box = $('#messages');
  try {
    const res = await api.get(historyUrl(c, 'before_seq', c.minSeq));
    const page = res.messages || [];
    for (const m of page) c.msgs.set(m.seq_id, m);
    c.minSeq = page.length ? Math.max(1, page[0].seq_id) : 1;
    if (S.current === c.cid) {
      // Keep what the reader is looking at in place while rows appear above.
      const before = box.scrollHeight - box.scrollTop;
      renderMessages(c, { keepBottomOffset: before });
    }
  } catch (e) {
    toastError(e, 'Could not load older messages');
  } finally {
    c.loadingOlder = false;
    renderHistoryEdge(c);
  }
}

export function markReadSoon(c) {
  clearTimeout(c.readTimer);
  c.readTimer = setTimeout(() => markRead(c), 150);
}

function markRead(c) {
  if (!isVisible(c)) return;
  const seq = Math.max(c.last_seq_id, c.maxSeq);
  const changed = seq > c.read_seq_id || c.unread > 0 || c.unread_mentions > 0;
  if (!changed || seq === 0) return;
  c.read_seq_id = Math.max(c.read_seq_id, seq);
  c.unread = 0;
  c.unread_mentions = 0;
  if (!sock.send({ type: 'read', conversation_id: c.cid, seq_id: seq })) {
    S.pendingReads.set(c.cid, seq);
  }
  render();
}
