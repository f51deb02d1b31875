// Layer 3 (views): who I am, shown in the rail and the settings, and the
// profile dialog that changes the display name and picture.

import { toast, toastError } from './toasts.js';
import { $ } from './util.js';
import { changed, rememberUser, S } from './store.js';
import { api } from './transport.js';
import { upload } from './uploads.js';
import { avatar } from './avatars.js';
import { openDialog } from './dialogs.js';

export function renderMe() {
  const btn = $('#nav-profile');
  btn.replaceChildren(avatar({ id: S.me.user_id, name: S.me.nickname || S.me.username, url: S.me.avatar_url, size: 'lg' }));
  btn.title = `${S.me.nickname || S.me.username} — profile`;
  $('#settings-account').textContent = `Signed in as ${S.me.username}${S.me.nickname ? ` (${S.me.nickname})` : ''}.`;
}

export function openProfile() {
  $('#profile-nickname').value = S.me.nickname || '';
  $('#profile-username').textContent = `@${S.me.username}`;
  $('#profile-id').textContent = `User id ${S.me.user_id}`;
  $('#err-profile-nickname').textContent = '';
  $('#profile-error').hidden = true;
  renderProfileAvatar();
  openDialog('#dlg-profile');
  $('#profile-nickname').focus();
}

function renderProfileAvatar() {
  $('#profile-avatar').replaceChildren(avatar({ id: S.me.user_id, name: S.me.nickname || S.me.username, url: S.me.avatar_url, size: 'xl' }));
}

async function saveProfile(ev) {
  ev.preventDefault();
  const nickname = $('#profile-nickname').value.trim();
  if ([...nickname].length > 50) {
    $('#err-profile-nickname').textContent = 'At most 50 characters.';
    return;
  }
  try {
    S.me = await api.patch('/users/me', { nickname });
    rememberUser(S.me);
    renderMe();
    changed();
    $('#dlg-profile').close();
    toast('Profile saved');
  } catch (e) {
    $('#profile-error').textContent = e.message;
    $('#profile-error').hidden = false;
  }
}

async function changeAvatar(file) {
  if (!file) return;
  if (!file.type.startsWith('image/')) {
    toast('Pick an image file.', true);
    return;
  }
  try {
    const res = await upload(file);
    S.me = await api.patch('/users/me', { avatar_url: res.url });
    rememberUser(S.me);
    renderMe();
    renderProfileAvatar();
    changed();
  } catch (e) {
    toastError(e, 'Could not change the picture');
  }
}

export function wireProfile() {
  $('#profile-form').addEventListener('submit', saveProfile);
  $('#avatar-btn').addEventListener('click', () => $('#avatar-input').click());
  $('#avatar-input').addEventListener('change', (ev) => {
    const f = ev.target.files[0];
    ev.target.value = '';
    changeAvatar(f);
  });
}
