// Layer 2 (services): the conversation list as the server keeps it, with the
// unread counts, read cursors and the user's settings of each (muted,
// pinned, archived), merged into what we hold. A conversation
// whose server copy is ahead of ours is pulled (history.js).

import { debounce } from './util.js';
import { loadLatest, markReadSoon, pullAfter } from './history.js';
import { api } from './transport.js';
import { changed, ensureConv, isVisible, S } from './store.js';

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
    applySettings(c, s);
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
  changed();
}
export const refreshConversationsSoon = debounce(refreshConversations, 300);

/** The user's own settings of a conversation (muted, pinned, archived). */
export function applySettings(c, s) {
  c.muted = !!s.muted;
  c.pinned = !!s.pinned;
  c.archived = !!s.archived;
}

/** Changes the user's settings of `c`; the server tells the other devices. */
export async function setConvSettings(c, patch) {
  const s = await api.put(`/conversations/${encodeURIComponent(c.cid)}/settings`, patch);
  applySettings(c, s);
  changed();
}
