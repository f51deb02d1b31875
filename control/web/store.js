// Layer 1 (store): the client's state `S`, the lookups on it, and the one way
// news travels up the layers: publish/subscribe by topic. Everything the UI
// shows is derived from `S`; whoever changes it calls changed() and the shell
// (layer 4) redraws. The store imports only layer 0 and touches neither the
// network nor the DOM, so it loads and is tested without a browser: what it
// cannot answer itself (an unknown user or group, whether the reader can see
// the chat) it asks through a topic or through the probe the shell installs.

import { singleConversationId } from './md5.js';
import { storage } from './util.js';

export const SETTINGS_KEY = 'gochat.settings';
export const SYSTEM_USER = '0';

export const S = {
  session: null, // {token, user_id, expires_at}
  me: null, // profile
  users: new Map(), // user_id -> profile (+ online)
  groups: new Map(), // group_id -> group
  members: new Map(), // group_id -> [{user_id, role, muted_until?}]
  joinRequests: new Map(), // group_id -> pending join requests (owners and admins only)
  friends: [], // user ids
  showArchived: false, // the chat list shows archived conversations too
  messageSearch: { q: '', hits: [] }, // what GET /search/messages answered for the search box
  requests: { incoming: [], outgoing: [] }, // pending friend requests (GET /friend-requests)
  myGroups: [], // group ids
  convs: new Map(), // conversation_id -> conversation
  current: null, // conversation_id open on the right
  mode: 'chats', // 'chats' | 'contacts'
  view: 'list', // phone: 'list' | 'chat'
  filter: '',
  outbox: [], // unacked sends, oldest first
  uploads: [], // uploads in progress {id, cid, kind, previewUrl, metadata, created}
  pendingReads: new Map(), // cid -> seq, posted when the socket is back
  conn: 'connecting',
  everConnected: false,
  showBanner: false, // the offline banner, once a first connect is slow or a link drops
  stickToBottom: false, // the next render scrolls the chat to its newest message
  drafts: new Map(), // cid -> {text, mentions: [{id, label}]}
  typing: new Map(), // cid -> {user_id, until}
  lastTypingSent: 0,
  infoOpen: false,
  settings: { theme: 'system', sound: true, desktop: false, ...storage.get(SETTINGS_KEY, {}) },
};

// ---------- topics ----------

// Every topic, with who publishes it and who listens (the wiring is in app.js).
// A fixed list, so that a misspelt topic fails loudly instead of going nowhere.
const TOPICS = [
  'change', // anyone who changed S -> the shell redraws (batched)
  'need', // (kind 'user' | 'group', id) a lookup met an unknown id -> loaders fetch it
  'details', // loaders: a group or its members arrived -> the details panel redraws
  'signed-in', // session: S.me is known -> the main screen shows
  'signed-out', // session: (flash) no usable session -> the sign-in screen shows
  'conv-opened', // navigation: (previous cid) a conversation was picked -> drafts, panel, popovers, focus
  'incoming', // history: (conversation, message) someone else's live message, unseen -> sound, notification
  'kicked', // sync: (reason) the server ended this session -> the kicked dialog
  'friend-request', // sync: (user id) someone asks to be a friend -> a notice
  'friend-added', // sync: (user id) a friendship formed -> a notice
];
const subscribers = new Map(TOPICS.map((t) => [t, new Set()]));

function listeners(topic) {
  const set = subscribers.get(topic);
  if (!set) throw new Error(`no such topic: ${topic}`);
  return set;
}

/** Calls fn(...args) on every publish of `topic`; returns the way to stop. */
export function subscribe(topic, fn) {
  listeners(topic).add(fn);
  return () => listeners(topic).delete(fn);
}

export function publish(topic, ...args) {
  for (const fn of [...listeners(topic)]) fn(...args);
}

export const changed = () => publish('change');

// Whether the reader can see the chat pane is the window's business (page
// visibility, which screen, the phone layout); the shell installs the answer.
let chatPaneSeen = () => false;
export function setChatPaneProbe(fn) {
  chatPaneSeen = fn;
}

// ---------- lookups ----------

export const myId = () => (S.me ? S.me.user_id : S.session && S.session.user_id);

export function userName(id) {
  if (id === SYSTEM_USER) return 'System';
  const u = S.users.get(id);
  if (!u) {
    publish('need', 'user', id);
    return `User ${id}`;
  }
  return u.nickname || u.username || `User ${id}`;
}

export function rememberUser(u) {
  if (!u || !u.user_id) return;
  S.users.set(u.user_id, { ...(S.users.get(u.user_id) || {}), ...u });
}

export function convName(c) {
  if (c.type === 'group') {
    const g = S.groups.get(c.group_id);
    return (g && g.name) || c.name || `Group ${c.group_id}`;
  }
  if (S.users.has(c.peer_user_id)) return userName(c.peer_user_id);
  publish('need', 'user', c.peer_user_id);
  return c.name || `User ${c.peer_user_id}`;
}

function newConv(cid, init) {
  return {
    cid,
    type: init.type || (cid.startsWith('g') ? 'group' : 'single'),
    peer_user_id: init.peer_user_id || null,
    group_id: init.group_id || (cid.startsWith('g') ? cid.slice(1) : null),
    name: init.name || '',
    last_seq_id: 0,
    read_seq_id: 0,
    unread: 0,
    unread_mentions: 0,
    last_message: null,
    created: Date.now(),
    msgs: new Map(),
    loaded: false,
    loading: null,
    pulling: null,
    minSeq: 1,
    maxSeq: 0,
    peerRead: 0,
    serverKnown: false,
  };
}

export function ensureConv(cid, init = {}) {
  let c = S.convs.get(cid);
  if (!c) {
    c = newConv(cid, init);
    S.convs.set(cid, c);
    if (c.type === 'group') publish('need', 'group', c.group_id);
    else if (c.peer_user_id) publish('need', 'user', c.peer_user_id);
  } else {
    if (init.peer_user_id && !c.peer_user_id) c.peer_user_id = init.peer_user_id;
    if (init.group_id && !c.group_id) c.group_id = init.group_id;
  }
  return c;
}

export function convForUser(uid) {
  return ensureConv(singleConversationId(myId(), uid), { type: 'single', peer_user_id: uid });
}

export function convForGroup(gid) {
  return ensureConv(`g${gid}`, { type: 'group', group_id: gid });
}

export function convOfMessage(m) {
  if (m.group_id) return ensureConv(m.conversation_id, { type: 'group', group_id: m.group_id });
  const peer = m.from_user_id === myId() ? m.to_user_id : m.from_user_id;
  return ensureConv(m.conversation_id, { type: 'single', peer_user_id: peer });
}

/** Open and in front of the reader: what arrives there is read at once. */
export function isVisible(c) {
  return !!c && S.current === c.cid && chatPaneSeen();
}

/** true / false when known, undefined while we are offline ourselves or never asked. */
export function onlineOf(uid) {
  if (S.conn !== 'open') return undefined;
  const u = S.users.get(uid);
  return u ? u.online : undefined;
}

export function mentionsMe(m) {
  const ms = m.mentions || [];
  return ms.includes(myId()) || ms.includes('all');
}

export function isSystem(m) {
  return m.from_user_id === SYSTEM_USER || m.message_type === 'system' || m.message_type === 'system_group';
}

/** The composer's unsent text of a conversation and the @names picked in it. */
export function draftOf(cid) {
  let d = S.drafts.get(cid);
  if (!d) {
    d = { text: '', mentions: [] };
    S.drafts.set(cid, d);
  }
  return d;
}
