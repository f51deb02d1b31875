// Layer 3 (views): the details panel beside a chat: a contact's profile with
// Add friend, or a group's announcement (editable by its owner and admins),
// members and roles with the actions their role allows (group-admin.js),
// Add members and Leave group. It redraws on `details`
// (app.js), when a group or its members arrive.

import { toast, toastError } from './toasts.js';
import { $, h, icon } from './util.js';
import { changed, convName, myId, onlineOf, S, userName } from './store.js';
import { ensureGroup, ensureMembers, ensureUser, loadJoinRequests } from './loaders.js';
import { api } from './transport.js';
import { avatar, userAvatar } from './avatars.js';
import { confirmDialog } from './dialogs.js';
import { setConvSettings } from './conversations.js';
import { adminSections, memberActions } from './group-admin.js';
import { openInvite } from './group-dialogs.js';
import { addFriend } from './people.js';

export function renderInfo() {
  const panel = $('#info-panel');
  const c = S.convs.get(S.current);
  panel.hidden = !S.infoOpen || !c;
  if (!S.infoOpen || !c) return;
  if (panel.querySelector('.announcement-edit')) return; // do not wipe an edit in progress
  if (c.type === 'single') {
    const u = S.users.get(c.peer_user_id) || {};
    const isFriend = S.friends.includes(c.peer_user_id);
    panel.replaceChildren(
      panelClose(),
      h('div', { class: 'info-head' }, avatar({ id: c.peer_user_id, name: convName(c), url: u.avatar_url, size: 'xl' }),
        h('h2', {}, convName(c)), h('p', { class: 'hint' }, u.username ? `@${u.username}` : ''),
        h('p', { class: 'hint' }, onlineOf(c.peer_user_id) === true ? 'Online' : onlineOf(c.peer_user_id) === false ? 'Offline' : '')),
      convSettings(c),
      h('div', { class: 'panel-actions' },
        isFriend ? h('p', { class: 'hint centered' }, 'In your friends')
        : S.requests.outgoing.some((r) => r.to_user_id === c.peer_user_id) ? h('p', { class: 'hint centered' }, 'Friend request sent')
        : h('button', {
          type: 'button', class: 'btn btn-primary', onclick: async (ev) => {
            ev.currentTarget.disabled = true;
            await addFriend(c.peer_user_id);
            renderInfo();
          },
        }, icon('user-plus'), 'Add friend'),
        h('button', {
          type: 'button', class: 'btn btn-danger-ghost', 'data-testid': 'block-user', onclick: async () => {
            const ok = await confirmDialog(`Block ${convName(c)}?`, 'They can no longer message you, ask to be your friend, add you to groups or see when you are online. Unblock in Settings.', 'Block');
            if (!ok) return;
            try {
              await api.post('/blocks', { user_id: c.peer_user_id });
              toast(`${convName(c)} is blocked`);
            } catch (e) { toastError(e, 'Could not block'); }
          },
        }, 'Block')));
    return;
  }
  const g = S.groups.get(c.group_id) || { name: convName(c), member_count: 0 };
  const members = S.members.get(c.group_id) || [];
  const mine = members.find((m) => m.user_id === myId());
  const canEdit = mine && (mine.role === 'owner' || mine.role === 'admin');
  const roleOrder = { owner: 0, admin: 1, member: 2 };
  const sorted = [...members].sort((a, b) => (roleOrder[a.role] - roleOrder[b.role]) || userName(a.user_id).localeCompare(userName(b.user_id)));
  const ann = h('div', { class: `announcement${g.announcement ? '' : ' empty'}`, 'data-testid': 'group-announcement' }, g.announcement || 'No announcement.');
  // replaceChildren would print a null as text: what a role does not see is left out.
  panel.replaceChildren(...[
    panelClose(),
    h('div', { class: 'info-head' }, avatar({ id: c.cid, name: g.name, url: g.avatar_url, group: true, size: 'xl' }),
      h('h2', {}, g.name), h('p', { class: 'hint', 'data-testid': 'group-member-count' }, `${g.member_count} member${g.member_count === 1 ? '' : 's'}`)),
    convSettings(c),
    h('h3', {}, 'Announcement'),
    ann,
    canEdit ? h('div', { class: 'row-actions' }, h('button', { type: 'button', class: 'btn btn-sm', 'data-testid': 'edit-announcement', onclick: () => editAnnouncement(c, g) }, icon('edit'), 'Edit')) : null,
    h('h3', {}, `Members · ${members.length || g.member_count}`),
    g.dissolved ? h('p', { class: 'hint', 'data-testid': 'group-dissolved' }, 'This group was dissolved. Its history stays readable.') : null,
    h('div', { 'data-testid': 'group-members' }, sorted.map((m) => h('div', { class: 'member-wrap' },
      h('div', { class: 'member', 'data-testid': 'group-member', 'data-user-id': m.user_id, 'data-role': m.role },
        userAvatar(m.user_id, 'sm'),
        h('span', { class: 'member-name' }, userName(m.user_id), m.user_id === myId() ? ' (you)' : ''),
        m.muted_until && m.muted_until > Date.now() ? h('span', { class: 'role', 'data-testid': 'member-muted' }, 'muted') : null,
        m.role !== 'member' ? h('span', { class: 'role' }, m.role) : null),
      g.dissolved ? null : memberActions(c.group_id, mine, m)))),
    ...adminSections(c, g, mine),
    g.dissolved ? null : h('div', { class: 'panel-actions' },
      h('button', { type: 'button', class: 'btn', onclick: () => openInvite(c), 'data-testid': 'invite-members' }, icon('user-plus'), 'Add members'),
      mine && mine.role !== 'owner' ? h('button', { type: 'button', class: 'btn btn-danger-ghost', onclick: () => leaveGroup(c) }, icon('logout'), 'Leave group') : null),
  ].filter(Boolean));
}

/** Mute, pin and archive: the user's own settings of this conversation. */
function convSettings(c) {
  const toggle = (key, on, off, testid) => h('button', {
    type: 'button', class: 'btn btn-sm', 'data-testid': testid, 'aria-pressed': String(!!c[key]),
    onclick: async () => {
      try {
        await setConvSettings(c, { [key]: !c[key] });
        renderInfo();
      } catch (e) { toastError(e, 'Could not change the setting'); }
    },
  }, c[key] ? off : on);
  return h('div', { class: 'conv-settings' },
    toggle('muted', 'Mute', 'Unmute', 'conv-mute'),
    toggle('pinned', 'Pin', 'Unpin', 'conv-pin'),
    toggle('archived', 'Archive', 'Unarchive', 'conv-archive'));
}

function panelClose() {
  return h('div', { class: 'row-actions panel-top' },
    h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Close details', onclick: () => toggleInfo(false) }, icon('x')));
}

function editAnnouncement(c, g) {
  const panel = $('#info-panel');
  const ann = panel.querySelector('[data-testid="group-announcement"]');
  const area = h('textarea', { 'aria-label': 'Announcement', maxlength: 4096 });
  area.value = g.announcement || '';
  const box = h('div', { class: 'announcement-edit' }, area,
    h('div', { class: 'row-actions' },
      h('button', { type: 'button', class: 'btn btn-sm', onclick: () => { box.remove(); renderInfo(); } }, 'Cancel'),
      h('button', {
        type: 'button', class: 'btn btn-primary btn-sm', onclick: async () => {
          try {
            const updated = await api.patch(`/groups/${encodeURIComponent(c.group_id)}`, { announcement: area.value });
            S.groups.set(c.group_id, updated);
            box.remove();
            renderInfo();
            toast('Announcement saved');
          } catch (e) { toastError(e, 'Could not save the announcement'); }
        },
      }, 'Save')));
  ann.replaceWith(box);
  const editBtn = panel.querySelector('[data-testid="edit-announcement"]');
  if (editBtn) editBtn.parentElement.remove();
  area.focus();
}

/** Rereads what the open panel shows of the current chat. */
export function loadDetails() {
  const c = S.convs.get(S.current);
  if (!S.infoOpen || !c) return;
  if (c.type !== 'group') {
    ensureUser(c.peer_user_id, true);
    return;
  }
  ensureGroup(c.group_id, true);
  ensureMembers(c.group_id, true);
  // No frame tells of new join requests: read them whenever the panel shows the group.
  const mine = (S.members.get(c.group_id) || []).find((m) => m.user_id === myId());
  if (mine && mine.role !== 'member') loadJoinRequests(c.group_id);
}

export function toggleInfo(open = !S.infoOpen) {
  S.infoOpen = open;
  if (open) loadDetails();
  renderInfo();
  changed();
  if (!open) $('#info-btn').focus();
}

async function leaveGroup(c) {
  const ok = await confirmDialog('Leave group?', `You will stop receiving messages from “${convName(c)}”.`, 'Leave');
  if (!ok) return;
  try {
    await api.del(`/groups/${encodeURIComponent(c.group_id)}/members/${encodeURIComponent(myId())}`);
    S.myGroups = S.myGroups.filter((g) => g !== c.group_id);
    S.convs.delete(c.cid);
    S.current = null;
    S.infoOpen = false;
    renderInfo();
    changed();
  } catch (e) { toastError(e, 'Could not leave the group'); }
}
