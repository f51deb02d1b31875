// Layer 3 (views): a group's administration in the details panel (docs/
// protocol.md, group administration): join requests to accept or decline,
// per-member actions by role (make admin or member, mute for an hour or
// unmute, remove, hand the group over), who may join, mute-all, and
// dissolving the group. Powers act on lower roles only; the server decides,
// these controls only hide what would be refused.

import { toast, toastError } from './toasts.js';
import { h } from './util.js';
import { changed, S, userName } from './store.js';
import { ensureGroup, ensureMembers, loadJoinRequests } from './loaders.js';
import { api } from './transport.js';
import { userAvatar } from './avatars.js';
import { confirmDialog } from './dialogs.js';

const RANK = { owner: 3, admin: 2, member: 1 };
const HOUR = 3600 * 1000;

/** Runs an admin call, then rereads the group, its members and requests;
 * false when the server refused. */
async function act(gid, what, call) {
  try {
    await call(`/groups/${encodeURIComponent(gid)}`);
  } catch (e) {
    toastError(e, `Could not ${what}`);
    return false;
  }
  ensureGroup(gid, true);
  ensureMembers(gid, true);
  loadJoinRequests(gid);
  return true;
}

function button(label, testid, onclick, kind = '') {
  return h('button', { type: 'button', class: `btn btn-sm ${kind}`, 'data-testid': testid, onclick }, label);
}

/** The actions `mine` may take on member `m` (nothing when none). */
export function memberActions(gid, mine, m) {
  if (!mine || m.user_id === mine.user_id || RANK[mine.role] <= RANK[m.role] || RANK[mine.role] < RANK.admin) return null;
  const member = (path) => `${path}/members/${encodeURIComponent(m.user_id)}`;
  const muted = m.muted_until && m.muted_until > Date.now();
  const actions = [];
  if (mine.role === 'owner') {
    const next = m.role === 'admin' ? 'member' : 'admin';
    actions.push(button(next === 'admin' ? 'Make admin' : 'Make member', 'member-role', () => act(gid, 'change the role', (g) => api.put(`${member(g)}/role`, { role: next }))));
  }
  actions.push(muted
    ? button('Unmute', 'member-unmute', () => act(gid, 'unmute', (g) => api.del(`${member(g)}/mute`)))
    : button('Mute 1 h', 'member-mute', () => act(gid, 'mute', (g) => api.post(`${member(g)}/mute`, { until: Date.now() + HOUR }))));
  if (mine.role === 'owner') {
    actions.push(button('Make owner', 'member-transfer', async () => {
      const ok = await confirmDialog('Hand the group over?', `${userName(m.user_id)} becomes the owner; you stay on as an admin.`, 'Make owner');
      if (ok) act(gid, 'hand the group over', (g) => api.post(`${g}/transfer`, { user_id: m.user_id }));
    }));
  }
  actions.push(button('Remove', 'member-remove', () => act(gid, 'remove the member', (g) => api.del(member(g))), 'btn-danger-ghost'));
  return h('div', { class: 'member-actions' }, actions);
}

/** Join requests, who may join, mute-all and dissolving, for owners and admins. */
export function adminSections(c, g, mine) {
  if (!mine || RANK[mine.role] < RANK.admin || g.dissolved) return [];
  const gid = c.group_id;
  if (!S.joinRequests.has(gid)) {
    S.joinRequests.set(gid, []);
    loadJoinRequests(gid);
  }
  const requests = S.joinRequests.get(gid) || [];
  const answer = (r, verb) => act(gid, `${verb} the request`, (p) => api.post(`${p}/join-requests/${encodeURIComponent(r.request_id)}/${verb}`))
    .then((ok) => { if (ok && verb === 'accept') toast(`${userName(r.user_id)} joined the group`); });
  const policy = h('select', {
    'aria-label': 'Who may join', 'data-testid': 'join-policy',
    onchange: (ev) => act(gid, 'change who may join', (p) => api.patch(p, { join_policy: ev.target.value })),
  }, ['approval', 'open', 'invite_only'].map((p) => h('option', { value: p, selected: g.join_policy === p },
    { approval: 'Ask to join (approval)', open: 'Anyone may join', invite_only: 'Invitation only' }[p])));
  const muteAll = h('input', {
    type: 'checkbox', 'data-testid': 'mute-all', checked: !!g.mute_all,
    onchange: (ev) => act(gid, 'change mute-all', (p) => api.patch(p, { mute_all: ev.target.checked })),
  });
  const sections = [
    h('h3', {}, `Join requests · ${requests.length}`),
    h('div', { 'data-testid': 'join-requests' }, requests.length ? requests.map((r) => h('div', { class: 'member', 'data-testid': 'join-request', 'data-user-id': r.user_id },
      userAvatar(r.user_id, 'sm'),
      h('span', { class: 'member-name' }, userName(r.user_id)),
      h('span', { class: 'request-actions' },
        button('Accept', 'join-accept', () => answer(r, 'accept'), 'btn-primary'),
        button('Decline', 'join-reject', () => answer(r, 'reject'))))) : h('p', { class: 'hint' }, 'Nobody is waiting.')),
    h('h3', {}, 'Settings'),
    h('label', { class: 'setting-row' }, h('span', {}, 'Who may join'), policy),
    h('label', { class: 'setting-row' }, muteAll, h('span', {}, 'Only the owner and admins may send')),
  ];
  if (mine.role === 'owner') {
    sections.push(h('div', { class: 'panel-actions' }, button('Dissolve group', 'dissolve-group', async () => {
      const ok = await confirmDialog('Dissolve the group?', 'Nobody can send to it any more; its history stays readable.', 'Dissolve');
      if (!ok) return;
      if (await act(gid, 'dissolve the group', (p) => api.del(p))) {
        S.myGroups = S.myGroups.filter((x) => x !== gid);
        changed();
      }
    }, 'btn-danger-ghost')));
  }
  return sections;
}
