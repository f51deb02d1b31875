// The profile dialog: display name and picture.

import { $ } from './util.js';
import { avatar } from './avatars.js';
import { openDialog } from './dialogs.js';
import { api } from './session.js';
import { render, renderMe } from './shell.js';
import { rememberUser, S } from './store.js';
import { toast, toastError } from './toasts.js';
import { upload } from './uploads.js';

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
    render();
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
    render();
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
