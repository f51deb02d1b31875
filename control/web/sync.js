// What arrives on the socket, and keeping each conversation's copy of its
// messages complete. Messages are kept per conversation keyed by seq_id, so a
// frame, an ack and a pull of the same message merge into one; a seq_id above
// the next expected one means a frame was lost, and the gap is pulled
// (conversations.js). After a reconnect: flush the outbox, post the read
// cursors that waited, and pull what was stored meanwhile.

import { $ } from './util.js';
import { markReadSoon, pullAfter, refreshConversations, refreshConversationsSoon } from './conversations.js';
import { openDialog } from './dialogs.js';
import { dropOutbox, flushOutbox, saveOutbox } from './outbox.js';
import { api, sock } from './session.js';
import { desktopNotify, playSound } from './settings.js';
import { render } from './shell.js';
import { convOfMessage, ensureConv, ensureGroup, ensureMembers, ensureUser, isVisible, loadFriends, loadGroups, mentionsMe, myId, S } from './store.js';

const TYPING_SHOW_FOR = 5000;

export function wireSync() {
  sock.onState = (state) => {
    S.conn = state;
    if (state === 'open') {
      S.everConnected = true;
      onConnected();
    }
    if (state === 'offline' && S.everConnected) S.showBanner = true;
    render();
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
      case 'kick': onKick(f); break;
      default: break; // pong and anything newer
    }
  };

  // typing indicators expire on their own
  setInterval(() => {
    const now = Date.now();
    let changed = false;
    for (const [cid, t] of S.typing) if (t.until <= now) { S.typing.delete(cid); changed = true; }
    if (changed) render();
  }, 1000);
}

async function onConnected() {
  S.showBanner = false;
  flushOutbox();
  for (const [cid, seq] of S.pendingReads) sock.send({ type: 'read', conversation_id: cid, seq_id: seq });
  S.pendingReads.clear();
  await refreshConversations();
  // Anything stored while we were away: pull after the last seq we hold.
  await Promise.all([...S.convs.values()].filter((c) => c.loaded).map((c) => pullAfter(c)));
  const c = S.convs.get(S.current);
  if (c && c.type === 'single') ensureUser(c.peer_user_id, true);
  if (c && c.type === 'group') { ensureGroup(c.group_id, true); ensureMembers(c.group_id, true); }
  loadFriends();
  loadGroups();
}

function onMessageFrame(m) {
  const c = convOfMessage(m);
  delete m.type;
  if (c.loaded && m.seq_id > c.maxSeq + 1 && !c.msgs.has(m.seq_id - 1)) {
    // A gap: something between what we hold and this one never reached us.
    ingest(m, true);
    pullAfter(c);
  } else {
    ingest(m, true);
  }
  render();
}

/** Takes one stored message into its conversation (from a frame, an ack or a pull). */
export function ingest(m, live) {
  const c = convOfMessage(m);
  c.serverKnown = true;
  const me = myId();
  if (m.from_user_id === me && m.client_msg_id) dropOutbox(m.client_msg_id);
  if (c.loaded || live) c.msgs.set(m.seq_id, m);
  if (c.loaded) advance(c);
  if (m.seq_id > c.last_seq_id) {
    c.last_seq_id = m.seq_id;
    c.last_message = m;
    if (m.from_user_id !== me && m.seq_id > c.read_seq_id) {
      if (isVisible(c)) {
        markReadSoon(c);
      } else {
        c.unread += 1;
        if (mentionsMe(m)) c.unread_mentions += 1;
        if (live) {
          playSound();
          desktopNotify(c, m);
        }
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

export function advance(c) {
  while (c.msgs.has(c.maxSeq + 1)) c.maxSeq += 1;
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
  render();
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
  render();
}

function onTypingFrame(f) {
  if (f.user_id === myId()) return;
  const c = S.convs.get(f.conversation_id);
  if (!c) return;
  S.typing.set(c.cid, { user_id: f.user_id, until: Date.now() + TYPING_SHOW_FOR });
  setTimeout(render, TYPING_SHOW_FOR + 50);
  render();
}

function onPresence(f) {
  const u = S.users.get(f.user_id);
  if (u) u.online = !!f.online;
  else S.users.set(f.user_id, { user_id: f.user_id, online: !!f.online });
  render();
}

function onErrorFrame(f) {
  if (!f.client_msg_id) return; // not about a send of ours
  const e = S.outbox.find((x) => x.client_msg_id === f.client_msg_id);
  if (!e) return;
  if (f.code === 'rate_limited' || f.code === 'internal' || f.code === 'unavailable') {
    e.sentAt = 0;
    setTimeout(flushOutbox, 1500 + Math.random() * 1500);
  } else {
    e.status = 'failed';
    e.error = f.message || f.code;
    saveOutbox();
  }
  render();
}

function onKick(f) {
  $('#kicked-text').textContent = `The server ended this session: ${f.reason || 'signed in elsewhere'}.`;
  openDialog('#dlg-kicked');
}
