// The client's state and the lookups on it. Everything the UI shows is derived
// from `S`; modules change it and call render() (shell.js). Users, groups and
// group members are fetched on first use and cached here, one request per id
// at a time however many rows ask for the same one.

import { singleConversationId } from './md5.js';
import { $, storage } from './util.js';
import { renderInfo } from './info-panel.js';
import { api } from './session.js';
import { render } from './shell.js';

export const SETTINGS_KEY = 'gochat.settings';

const SYSTEM_USER = '0';

export const S = {
  session: null, // {token, user_id, expires_at}
  me: null, // profile
  users: new Map(), // user_id -> profile (+ online)
  userFetches: new Map(),
  groups: new Map(), // group_id -> group
  groupFetches: new Map(),
  members: new Map(), // group_id -> [{user_id, role}]
  memberFetches: new Map(),
  friends: [], // user ids
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

export const myId = () => (S.me ? S.me.user_id : S.session && S.session.user_id);
export const isPhone = () => matchMedia('(max-width: 720px)').matches;

export function userName(id) {
  if (id === SYSTEM_USER) return 'System';
  const u = S.users.get(id);
  if (!u) {
    ensureUser(id);
    return `User ${id}`;
  }
  return u.nickname || u.username || `User ${id}`;
}

export function ensureUser(id, force = false) {
  if (!id || id === SYSTEM_USER) return Promise.resolve(null);
  if (!force && S.users.has(id)) return Promise.resolve(S.users.get(id));
  if (S.userFetches.has(id)) return S.userFetches.get(id);
  const p = api.get(`/users/${encodeURIComponent(id)}`)
    .then((u) => {
      S.users.set(id, { ...(S.users.get(id) || {}), ...u });
      render();
      return u;
    })
    .catch((e) => {
      if (e.status === 404) S.users.set(id, { user_id: id, username: '', nickname: 'Deleted user' });
      return null;
    })
    .finally(() => S.userFetches.delete(id));
  S.userFetches.set(id, p);
  return p;
}

export function rememberUser(u) {
  if (!u || !u.user_id) return;
  S.users.set(u.user_id, { ...(S.users.get(u.user_id) || {}), ...u });
}

export function ensureGroup(gid, force = false) {
  if (!gid) return Promise.resolve(null);
  if (!force && S.groups.has(gid)) return Promise.resolve(S.groups.get(gid));
  if (S.groupFetches.has(gid)) return S.groupFetches.get(gid);
  const p = api.get(`/groups/${encodeURIComponent(gid)}`)
    .then((g) => {
      S.groups.set(gid, g);
      const c = S.convs.get(g.conversation_id);
      if (c) c.name = g.name;
      render();
      if (S.infoOpen) renderInfo();
      return g;
    })
    .catch(() => null)
    .finally(() => S.groupFetches.delete(gid));
  S.groupFetches.set(gid, p);
  return p;
}

export function ensureMembers(gid, force = false) {
  if (!force && S.members.has(gid)) return Promise.resolve(S.members.get(gid));
  if (S.memberFetches.has(gid)) return S.memberFetches.get(gid);
  const p = api.get(`/groups/${encodeURIComponent(gid)}/members`)
    .then((res) => {
      const members = res.members || [];
      S.members.set(gid, members);
      for (const m of members.slice(0, 300)) if (!S.users.has(m.user_id)) ensureUser(m.user_id);
      render();
      if (S.infoOpen) renderInfo();
      return members;
    })
    .catch(() => S.members.get(gid) || [])
    .finally(() => S.memberFetches.delete(gid));
  S.memberFetches.set(gid, p);
  return p;
}

export function convName(c) {
  if (c.type === 'group') {
    const g = S.groups.get(c.group_id);
    return (g && g.name) || c.name || `Group ${c.group_id}`;
  }
  if (S.users.has(c.peer_user_id)) return userName(c.peer_user_id);
  ensureUser(c.peer_user_id);
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
    if (c.type === 'group') ensureGroup(c.group_id);
    else if (c.peer_user_id) ensureUser(c.peer_user_id);
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

export function isVisible(c) {
  return !!c && S.current === c.cid && document.visibilityState === 'visible'
    && !$('#main-screen').hidden && (!isPhone() || S.view === 'chat');
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

export async function loadFriends() {
  try {
    const res = await api.get('/friends');
    S.friends = (res.friends || []).map((u) => { rememberUser(u); return u.user_id; });
    render();
  } catch { /* keep what we have */ }
}

export async function loadGroups() {
  try {
    const res = await api.get('/groups');
    S.myGroups = (res.groups || []).map((g) => { S.groups.set(g.group_id, g); return g.group_id; });
    render();
  } catch { /* keep what we have */ }
}
