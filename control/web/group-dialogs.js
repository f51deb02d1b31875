// Layer 3 (views): the Create group dialog (name, picture, the friends to start
// with) and the Add members dialog of an existing group.

import { toastError } from './toasts.js';
import { $, h } from './util.js';
import { convForGroup, S, userName } from './store.js';
import { refreshConversationsSoon } from './conversations.js';
import { ensureGroup, ensureMembers } from './loaders.js';
import { openConv } from './navigation.js';
import { api } from './transport.js';
import { upload } from './uploads.js';
import { avatar, userAvatar } from './avatars.js';
import { openDialog } from './dialogs.js';

const groupDraft = { picked: new Set(), avatarUrl: null };

export function openCreateGroup() {
  groupDraft.picked = new Set();
  groupDraft.avatarUrl = null;
  $('#group-name').value = '';
  $('#group-filter').value = '';
  $('#err-group-name').textContent = '';
  $('#group-name').removeAttribute('aria-invalid');
  $('#group-error').hidden = true;
  renderGroupAvatar();
  renderGroupOptions();
  openDialog('#dlg-group');
  $('#group-name').focus();
}

function renderGroupAvatar() {
  $('#group-avatar-preview').replaceChildren(avatar({ id: 'new-group', name: $('#group-name').value.trim(), url: groupDraft.avatarUrl, group: true, size: 'xl' }));
}

function renderGroupOptions() {
  const q = $('#group-filter').value.trim().toLowerCase();
  const box = $('#group-members');
  const friends = S.friends
    .filter((id) => !q || userName(id).toLowerCase().includes(q))
    .sort((a, b) => userName(a).localeCompare(userName(b)));
  box.replaceChildren(...(friends.length ? friends.map((id) => {
    const cb = h('input', { type: 'checkbox', checked: groupDraft.picked.has(id), 'data-testid': 'group-member-option', 'data-user-id': id });
    cb.addEventListener('change', () => {
      if (cb.checked) groupDraft.picked.add(id);
      else groupDraft.picked.delete(id);
      updatePicked();
    });
    return h('label', { class: 'pick' }, cb, userAvatar(id, 'sm'), h('span', { class: 'item-main' }, h('span', { class: 'item-name' }, userName(id))));
  }) : [h('p', { class: 'hint' }, S.friends.length ? 'No friend matches.' : 'Add friends first: a group starts with friends you pick.')]));
  updatePicked();
}

function updatePicked() {
  const n = groupDraft.picked.size;
  $('#group-picked').textContent = n ? `${n} member${n === 1 ? '' : 's'} picked (plus you)` : 'Pick the friends to start with';
}

async function submitCreateGroup(ev) {
  ev.preventDefault();
  const name = $('#group-name').value.trim();
  $('#group-error').hidden = true;
  if (!name || [...name].length > 50) {
    $('#err-group-name').textContent = name ? 'At most 50 characters.' : 'Give the group a name.';
    $('#group-name').setAttribute('aria-invalid', 'true');
    $('#group-name').focus();
    return;
  }
  const btn = $('#group-create');
  btn.disabled = true;
  try {
    let g = await api.post('/groups', { name, member_ids: [...groupDraft.picked] });
    if (groupDraft.avatarUrl) {
      try { g = await api.patch(`/groups/${encodeURIComponent(g.group_id)}`, { avatar_url: groupDraft.avatarUrl }); } catch { /* keep the group */ }
    }
    S.groups.set(g.group_id, g);
    if (!S.myGroups.includes(g.group_id)) S.myGroups.push(g.group_id);
    const c = convForGroup(g.group_id);
    c.serverKnown = true;
    $('#dlg-group').close();
    openConv(c.cid);
    refreshConversationsSoon();
  } catch (e) {
    $('#group-error').textContent = e.message;
    $('#group-error').hidden = false;
  } finally {
    btn.disabled = false;
  }
}

// ---------- invite ----------

let inviteFor = null;
const invitePicked = new Set();
export async function openInvite(c) {
  inviteFor = c;
  invitePicked.clear();
  const members = new Set((await ensureMembers(c.group_id)).map((m) => m.user_id));
  const options = S.friends.filter((id) => !members.has(id)).sort((a, b) => userName(a).localeCompare(userName(b)));
  $('#invite-error').hidden = true;
  $('#invite-options').replaceChildren(...(options.length ? options.map((id) => {
    const cb = h('input', { type: 'checkbox' });
    cb.addEventListener('change', () => (cb.checked ? invitePicked.add(id) : invitePicked.delete(id)));
    return h('label', { class: 'pick' }, cb, userAvatar(id, 'sm'), h('span', { class: 'item-main' }, h('span', { class: 'item-name' }, userName(id))));
  }) : [h('p', { class: 'hint' }, 'All your friends are already in this group.')]));
  openDialog('#dlg-invite');
}

async function submitInvite(ev) {
  ev.preventDefault();
  if (!inviteFor || !invitePicked.size) {
    $('#dlg-invite').close();
    return;
  }
  try {
    await api.post(`/groups/${encodeURIComponent(inviteFor.group_id)}/members`, { user_ids: [...invitePicked] });
    $('#dlg-invite').close();
    ensureGroup(inviteFor.group_id, true);
    ensureMembers(inviteFor.group_id, true);
  } catch (e) {
    $('#invite-error').textContent = e.message;
    $('#invite-error').hidden = false;
  }
}

export function wireGroupDialogs() {
  $('#group-form').addEventListener('submit', submitCreateGroup);
  $('#group-filter').addEventListener('input', renderGroupOptions);
  $('#group-name').addEventListener('input', () => {
    $('#err-group-name').textContent = '';
    $('#group-name').removeAttribute('aria-invalid');
    renderGroupAvatar();
  });
  $('#group-avatar-btn').addEventListener('click', () => $('#group-avatar-input').click());
  $('#group-avatar-input').addEventListener('change', async (ev) => {
    const f = ev.target.files[0];
    ev.target.value = '';
    if (!f) return;
    try {
      groupDraft.avatarUrl = (await upload(f)).url;
      renderGroupAvatar();
    } catch (e) { toastError(e, 'Could not upload the picture'); }
  });
  $('#invite-form').addEventListener('submit', submitInvite);
}
