// Layer 3 (views): finding people and groups: the Add friend / find group
// dialog (search, add, join), the New chat dialog (friends first, then any
// username) and adding a friend from anywhere.

import { toast, toastError } from './toasts.js';
import { $, $$, debounce, h, icon } from './util.js';
import { changed, convForGroup, convForUser, myId, rememberUser, S, userName } from './store.js';
import { refreshConversationsSoon } from './conversations.js';
import { loadFriends, loadRequests } from './loaders.js';
import { openConv } from './navigation.js';
import { api } from './transport.js';
import { avatar, userAvatar } from './avatars.js';
import { openDialog } from './dialogs.js';

/** Asks `uid` to be a friend: friends at once when their policy is open or
 * they asked first, else a request waits for them. 'friends', 'requested',
 * or false when refused. */
export async function addFriend(uid) {
  let res;
  try {
    res = await api.post('/friends', { user_id: uid });
  } catch (e) {
    toastError(e, e.status === 403 ? 'This user does not accept friend requests' : 'Could not add the friend');
    return false;
  }
  if (res && res.status === 'requested') {
    toast(`Friend request sent to ${userName(uid)}`);
    loadRequests();
    return 'requested';
  }
  if (!S.friends.includes(uid)) S.friends.push(uid);
  toast(`${userName(uid)} is now in your friends`);
  loadFriends();
  loadRequests();
  changed();
  return 'friends';
}

// ---------- add friend / find group ----------

let addKind = 'users';
export function openAdd(kind = 'users') {
  addKind = kind;
  for (const b of $$('#dlg-add [data-kind]')) b.setAttribute('aria-selected', String(b.dataset.kind === kind));
  $('#add-query').placeholder = kind === 'users' ? 'Search by username' : 'Search groups by name';
  $('#add-results').replaceChildren(h('p', { class: 'hint' }, kind === 'users' ? 'Find people by the start of their username.' : 'Find public groups by name.'));
  openDialog('#dlg-add');
  $('#add-query').focus();
}

async function runAddSearch() {
  const q = $('#add-query').value.trim();
  const box = $('#add-results');
  if (!q) {
    box.replaceChildren(h('p', { class: 'hint' }, 'Type something to search.'));
    return;
  }
  box.replaceChildren(h('p', { class: 'hint' }, 'Searching…'));
  try {
    if (addKind === 'users') {
      const res = await api.get(`/users?q=${encodeURIComponent(q)}`);
      const users = res.users || [];
      users.forEach(rememberUser);
      box.replaceChildren(...(users.length ? users.map(userResult) : [h('p', { class: 'hint' }, `Nobody’s username starts with “${q}”.`)]));
    } else {
      const res = await api.get(`/groups?q=${encodeURIComponent(q)}`);
      const groups = res.groups || [];
      box.replaceChildren(...(groups.length ? groups.map(groupResult) : [h('p', { class: 'hint' }, `No group matches “${q}”.`)]));
    }
  } catch (e) {
    box.replaceChildren(h('p', { class: 'form-error' }, e.message));
  }
}

function userResult(u) {
  const me = u.user_id === myId();
  const friend = S.friends.includes(u.user_id);
  const actions = h('span', { class: 'result-actions' });
  const message = h('button', { type: 'button', class: 'btn btn-sm', onclick: () => { $('#dlg-add').close(); openConv(convForUser(u.user_id).cid); } }, 'Message');
  if (me) actions.append(h('span', { class: 'result-note' }, 'You'));
  else if (friend) actions.append(h('span', { class: 'result-note' }, 'Friend'), message);
  else if (S.requests.outgoing.some((r) => r.to_user_id === u.user_id)) {
    actions.append(h('span', { class: 'result-note', 'data-testid': 'friend-requested' }, 'Requested'), message);
  }
  else {
    const add = h('button', {
      type: 'button', class: 'btn btn-primary btn-sm', 'data-testid': 'add-friend-button', onclick: async () => {
        add.disabled = true;
        const outcome = await addFriend(u.user_id);
        if (outcome === 'friends') {
          add.replaceWith(h('span', { class: 'result-note', 'data-testid': 'friend-added' }, 'Added ✓'));
          actions.append(message);
        } else if (outcome === 'requested') {
          add.replaceWith(h('span', { class: 'result-note', 'data-testid': 'friend-requested' }, 'Requested ✓'));
          actions.append(message);
        } else add.disabled = false;
      },
    }, icon('user-plus'), 'Add');
    actions.append(add);
  }
  return h('div', { class: 'result', 'data-testid': 'user-result', 'data-user-id': u.user_id, 'data-username': u.username },
    avatar({ id: u.user_id, name: u.nickname || u.username, url: u.avatar_url }),
    h('span', { class: 'item-main' }, h('span', { class: 'item-name' }, u.nickname || u.username), h('span', { class: 'item-sub' }, `@${u.username}`)),
    actions);
}

function groupResult(g) {
  const member = S.myGroups.includes(g.group_id);
  const btn = member
    ? h('button', { type: 'button', class: 'btn btn-sm', onclick: () => { $('#dlg-add').close(); openConv(convForGroup(g.group_id).cid); } }, 'Open')
    : h('button', {
      type: 'button', class: 'btn btn-primary btn-sm', 'data-testid': 'join-group-button', onclick: async () => {
        btn.disabled = true;
        try {
          const joined = await api.post(`/groups/${encodeURIComponent(g.group_id)}/join`);
          if (joined.request_id) {
            // The group asks for approval: its owner or an admin decides.
            btn.replaceWith(h('span', { class: 'result-note', 'data-testid': 'join-requested' }, 'Requested'));
            toast(`Asked to join ${g.name}; an admin will let you in`);
            return;
          }
          S.groups.set(g.group_id, joined);
          if (!S.myGroups.includes(g.group_id)) S.myGroups.push(g.group_id);
          $('#dlg-add').close();
          openConv(convForGroup(g.group_id).cid);
          refreshConversationsSoon();
        } catch (e) {
          btn.disabled = false;
          toastError(e, 'Could not join the group');
        }
      },
    }, 'Join');
  return h('div', { class: 'result', 'data-testid': 'group-result', 'data-group-id': g.group_id },
    avatar({ id: g.conversation_id, name: g.name, url: g.avatar_url, group: true }),
    h('span', { class: 'item-main' }, h('span', { class: 'item-name' }, g.name), h('span', { class: 'item-sub' }, `${g.member_count} member${g.member_count === 1 ? '' : 's'}`)),
    btn);
}

// ---------- new chat ----------

export function openNewChat() {
  $('#new-chat-query').value = '';
  renderNewChat([]);
  openDialog('#dlg-new-chat');
  $('#new-chat-query').focus();
}

function renderNewChat(found) {
  const q = $('#new-chat-query').value.trim().toLowerCase();
  const box = $('#new-chat-results');
  const friends = S.friends
    .filter((id) => !q || userName(id).toLowerCase().includes(q) || ((S.users.get(id) || {}).username || '').toLowerCase().includes(q))
    .sort((a, b) => userName(a).localeCompare(userName(b)));
  const others = found.filter((u) => u.user_id !== myId() && !S.friends.includes(u.user_id));
  const row = (id) => {
    const u = S.users.get(id) || {};
    return h('button', {
      type: 'button', class: 'item', 'data-testid': 'new-chat-option', 'data-user-id': id,
      onclick: () => { $('#dlg-new-chat').close(); openConv(convForUser(id).cid); },
    }, userAvatar(id), h('span', { class: 'item-main' }, h('span', { class: 'item-name' }, userName(id)), h('span', { class: 'item-sub' }, u.username ? `@${u.username}` : '')));
  };
  const kids = [];
  if (friends.length) kids.push(h('div', { class: 'list-section' }, 'Friends'), ...friends.map(row));
  if (others.length) kids.push(h('div', { class: 'list-section' }, 'Other people'), ...others.map((u) => row(u.user_id)));
  if (!kids.length) kids.push(h('p', { class: 'hint' }, q ? 'Nobody found.' : 'No friends yet. Type a username to find someone.'));
  box.replaceChildren(...kids);
}

const searchNewChat = debounce(async () => {
  const q = $('#new-chat-query').value.trim();
  if (!q) return renderNewChat([]);
  renderNewChat([]);
  try {
    const res = await api.get(`/users?q=${encodeURIComponent(q)}`);
    (res.users || []).forEach(rememberUser);
    if ($('#new-chat-query').value.trim() === q) renderNewChat(res.users || []);
  } catch { /* friends alone */ }
}, 250);

export function wirePeople() {
  $('#add-form').addEventListener('submit', (ev) => { ev.preventDefault(); runAddSearch(); });
  for (const b of $$('#dlg-add [data-kind]')) b.addEventListener('click', () => { openAdd(b.dataset.kind); });
  $('#new-chat-query').addEventListener('input', searchNewChat);
}
