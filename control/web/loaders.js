// Layer 2 (services): the users, groups and group members the state refers
// to, fetched on first use (or again when `force`), one request per id at a
// time however many rows ask for the same one; and the friend and group lists.
// Lookups in the store that meet an unknown id publish `need`, which app.js
// routes to fetchMissing.

import { api } from './transport.js';
import { changed, publish, rememberUser, S, SYSTEM_USER } from './store.js';

const inFlight = { user: new Map(), group: new Map(), members: new Map() };

function once(kind, id, request) {
  const running = inFlight[kind];
  if (running.has(id)) return running.get(id);
  const p = request().finally(() => running.delete(id));
  running.set(id, p);
  return p;
}

export function ensureUser(id, force = false) {
  if (!id || id === SYSTEM_USER) return Promise.resolve(null);
  if (!force && S.users.has(id)) return Promise.resolve(S.users.get(id));
  return once('user', id, () => api.get(`/users/${encodeURIComponent(id)}`)
    .then((u) => {
      S.users.set(id, { ...(S.users.get(id) || {}), ...u });
      changed();
      return u;
    })
    .catch((e) => {
      if (e.status === 404) S.users.set(id, { user_id: id, username: '', nickname: 'Deleted user' });
      return null;
    }));
}

export function ensureGroup(gid, force = false) {
  if (!gid) return Promise.resolve(null);
  if (!force && S.groups.has(gid)) return Promise.resolve(S.groups.get(gid));
  return once('group', gid, () => api.get(`/groups/${encodeURIComponent(gid)}`)
    .then((g) => {
      S.groups.set(gid, g);
      const c = S.convs.get(g.conversation_id);
      if (c) c.name = g.name;
      changed();
      publish('details');
      return g;
    })
    .catch(() => null));
}

export function ensureMembers(gid, force = false) {
  if (!force && S.members.has(gid)) return Promise.resolve(S.members.get(gid));
  return once('members', gid, () => api.get(`/groups/${encodeURIComponent(gid)}/members`)
    .then((res) => {
      const members = res.members || [];
      S.members.set(gid, members);
      for (const m of members.slice(0, 300)) if (!S.users.has(m.user_id)) ensureUser(m.user_id);
      changed();
      publish('details');
      return members;
    })
    .catch(() => S.members.get(gid) || []));
}

/** A group's pending join requests, for its owner and admins. */
export async function loadJoinRequests(gid) {
  try {
    const res = await api.get(`/groups/${encodeURIComponent(gid)}/join-requests`);
    S.joinRequests.set(gid, res.requests || []);
    for (const r of res.requests || []) ensureUser(r.user_id);
    publish('details');
  } catch { S.joinRequests.delete(gid); }
}

/** What the store asks for through `need`. */
export function fetchMissing(kind, id) {
  if (kind === 'group') ensureGroup(id);
  else ensureUser(id);
}

export async function loadFriends() {
  try {
    const res = await api.get('/friends');
    S.friends = (res.friends || []).map((u) => { rememberUser(u); return u.user_id; });
    changed();
  } catch { /* keep what we have */ }
}

/** Pending friend requests both ways; their people's profiles are fetched as needed. */
export async function loadRequests() {
  try {
    const res = await api.get('/friend-requests');
    S.requests = { incoming: res.incoming || [], outgoing: res.outgoing || [] };
    for (const r of [...S.requests.incoming, ...S.requests.outgoing]) {
      ensureUser(r.from_user_id);
      ensureUser(r.to_user_id);
    }
    changed();
  } catch { /* keep what we have */ }
}

export async function loadGroups() {
  try {
    const res = await api.get('/groups');
    S.myGroups = (res.groups || []).map((g) => { S.groups.set(g.group_id, g); return g.group_id; });
    changed();
  } catch { /* keep what we have */ }
}
