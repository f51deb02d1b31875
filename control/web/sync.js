// Layer 2 (services): what arrives on the socket. Frames are dispatched to
// the service that owns their part of the state: messages and acks are merged
// into the history (history.js), a seq_id above the next expected one means a
// frame was lost and the gap is pulled. After a reconnect: flush the outbox,
// post the read cursors that waited, and pull what was stored meanwhile.
// What this tab holds is reported with `delivered` frames (PROTOCOL v1.1),
// so a push still waiting for the user's phone is dropped.

import { applySettings, refreshConversations, refreshConversationsSoon } from './conversations.js';
import { ingest, pullAfter } from './history.js';
import { ensureGroup, ensureMembers, ensureUser, loadFriends, loadGroups, loadRequests } from './loaders.js';
import { flushOutbox, saveOutbox } from './outbox.js';
import { api, sock } from './transport.js';
import { changed, convOfMessage, ensureConv, myId, publish, S } from './store.js';

const TYPING_SHOW_FOR = 5000;
/** A burst of messages is reported once, this long after its last one. */
const DELIVERED_AFTER = 300;

export function wireSync() {
  sock.onState = (state) => {
    S.conn = state;
    if (state === 'open') {
      S.everConnected = true;
      onConnected();
    }
    if (state === 'offline' && S.everConnected) S.showBanner = true;
    changed();
  };

  sock.onOpenFailed = (count) => {
    // A refused upgrade looks like a network error; ask the API whether the
    // token still works (a 401 ends the session).
    if (count === 2 || count % 5 === 0) api.get('/users/me').catch(() => {});
  };

  sock.onFrame = (f) => {
    switch (f.type) {
      case 'message': onMessageFrame(f); break;
      case 'ack': onAck(f); break;
      case 'notify': onNotify(f); break;
      case 'read': onReadFrame(f); break;
      case 'typing': onTypingFrame(f); break;
      case 'presence': onPresence(f); break;
      case 'error': onErrorFrame(f); break;
      case 'kick': publish('kicked', f.reason); break;
      case 'conversation_settings': {
        // Changed on another of the user's devices.
        const c = S.convs.get(f.conversation_id);
        if (c) { applySettings(c, f); changed(); }
        break;
      }
      // The notices name the person, so their profile comes first.
      case 'friend_request':
        loadRequests();
        ensureUser(f.from_user_id).then(() => publish('friend-request', f.from_user_id));
        break;
      case 'friend_added':
        loadFriends();
        loadRequests();
        ensureUser(f.user_id).then(() => publish('friend-added', f.user_id));
        break;
      default: break; // pong and anything newer
    }
  };
}

/** Typing indicators expire on their own (app.js runs this every second). */
export function expireTyping() {
  const now = Date.now();
  let expired = false;
  for (const [cid, t] of S.typing) if (t.until <= now) { S.typing.delete(cid); expired = true; }
  if (expired) changed();
}

async function onConnected() {
  S.showBanner = false;
  flushOutbox();
  for (const [cid, seq] of S.pendingReads) sock.send({ type: 'read', conversation_id: cid, seq_id: seq });
  S.pendingReads.clear();
  await refreshConversations();
  // Anything stored while we were away: pull after the last seq we hold.
  const loaded = [...S.convs.values()].filter((c) => c.loaded);
  await Promise.all(loaded.map((c) => pullAfter(c)));
  for (const c of loaded) noteDelivered(c, c.maxSeq);
  const c = S.convs.get(S.current);
  if (c && c.type === 'single') ensureUser(c.peer_user_id, true);
  if (c && c.type === 'group') { ensureGroup(c.group_id, true); ensureMembers(c.group_id, true); }
  loadFriends();
  loadRequests();
  loadGroups();
}

function onMessageFrame(m) {
  const c = convOfMessage(m);
  delete m.type;
  if (c.loaded && m.seq_id > c.maxSeq + 1 && !c.msgs.has(m.seq_id - 1)) {
    // A gap: something between what we hold and this one never reached us.
    ingest(m, true);
    pullAfter(c).then(() => noteDelivered(c, c.maxSeq));
  } else {
    ingest(m, true);
    // An open history is held without holes up to maxSeq; otherwise this
    // frame is what the tab has.
    noteDelivered(c, c.loaded ? c.maxSeq : m.seq_id);
  }
  changed();
}

/** Reports, soon, that this tab holds `c` up to `seq`. */
function noteDelivered(c, seq) {
  if (!(seq > (c.deliveredSeq || 0))) return;
  c.deliveredWanted = Math.max(c.deliveredWanted || 0, seq);
  clearTimeout(c.deliveredTimer);
  c.deliveredTimer = setTimeout(() => {
    const want = c.deliveredWanted;
    if (want > (c.deliveredSeq || 0) && sock.send({ type: 'delivered', conversation_id: c.cid, seq_id: want })) {
      c.deliveredSeq = want;
    }
  }, DELIVERED_AFTER);
}

function onAck(a) {
  const i = S.outbox.findIndex((e) => e.client_msg_id === a.client_msg_id);
  if (i < 0) return; // a repeat ack of something already in place
  const entry = S.outbox[i];
  const f = entry.frame;
  const m = {
    message_id: a.message_id,
    conversation_id: a.conversation_id,
    seq_id: a.seq_id,
    from_user_id: myId(),
    message_type: f.message_type,
    content: f.content,
    metadata: f.metadata || {},
    mentions: f.mentions || [],
    client_msg_id: f.client_msg_id,
    timestamp: a.timestamp,
  };
  if (f.group_id) m.group_id = f.group_id;
  else m.to_user_id = f.to_user_id;
  const c = convOfMessage(m);
  // The server knows the conversation id; the one we computed must agree.
  if (entry.cid !== a.conversation_id) {
    const old = S.convs.get(entry.cid);
    if (old && old !== c && S.current === entry.cid) S.current = c.cid;
  }
  const gap = c.loaded && a.seq_id > c.maxSeq + 1;
  ingest(m, true);
  if (gap) pullAfter(c);
  changed();
}

function onNotify(f) {
  const c = ensureConv(f.conversation_id, {});
  if (c.loaded) pullAfter(c);
  else refreshConversationsSoon();
}

function onReadFrame(f) {
  const c = S.convs.get(f.conversation_id);
  if (!c) return;
  if (f.user_id === myId()) {
    // Read on another device of mine.
    if (f.seq_id > c.read_seq_id) c.read_seq_id = f.seq_id;
    if (f.seq_id >= c.last_seq_id) {
      c.unread = 0;
      c.unread_mentions = 0;
    } else {
      refreshConversationsSoon();
    }
  } else if (c.type === 'single') {
    c.peerRead = Math.max(c.peerRead, f.seq_id);
  }
  changed();
}

function onTypingFrame(f) {
  if (f.user_id === myId()) return;
  const c = S.convs.get(f.conversation_id);
  if (!c) return;
  S.typing.set(c.cid, { user_id: f.user_id, until: Date.now() + TYPING_SHOW_FOR });
  setTimeout(changed, TYPING_SHOW_FOR + 50);
  changed();
}

function onPresence(f) {
  const u = S.users.get(f.user_id);
  const lastSeen = f.online ? undefined : Date.now();
  if (u) {
    u.online = !!f.online;
    if (lastSeen) u.last_seen = lastSeen;
  } else S.users.set(f.user_id, { user_id: f.user_id, online: !!f.online, last_seen: lastSeen });
  changed();
}

function onErrorFrame(f) {
  if (!f.client_msg_id) return; // not about a send of ours
  const e = S.outbox.find((x) => x.client_msg_id === f.client_msg_id);
  if (!e) return;
  if (f.code === 'rate_limited' || f.code === 'overloaded' || f.code === 'internal' || f.code === 'unavailable') {
    e.sentAt = 0;
    setTimeout(flushOutbox, 1500 + Math.random() * 1500);
  } else {
    e.status = 'failed';
    e.error = f.message || f.code;
    saveOutbox();
  }
  changed();
}
