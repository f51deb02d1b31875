// Layer 3 (views): settings, kept in localStorage: the theme, the message
// sound and desktop notifications, with the dialog that changes them; and
// the account's privacy, kept by the server: who may become a friend, and
// the blocked users (with Unblock). The
// sound is synthesised (no audio file); browsers allow audio only after a user
// gesture, hence unlockAudio on the first pointer or key press.

import { toast, toastError } from './toasts.js';
import { $, $$, h, storage } from './util.js';
import { convName, rememberUser, S, SETTINGS_KEY, userName } from './store.js';
import { api } from './transport.js';
import { userAvatar } from './avatars.js';
import { openConv } from './navigation.js';
import { openDialog } from './dialogs.js';
import { previewText } from './messages.js';

function saveSettings() {
  storage.set(SETTINGS_KEY, S.settings);
}

export function applyTheme() {
  const t = S.settings.theme;
  if (t === 'light' || t === 'dark') document.documentElement.dataset.theme = t;
  else delete document.documentElement.dataset.theme;
  const dark = t === 'dark' || (t === 'system' && matchMedia('(prefers-color-scheme: dark)').matches);
  $('meta[name="theme-color"]').setAttribute('content', dark ? '#161920' : '#ffffff');
  for (const b of $$('[data-theme-choice]')) b.setAttribute('aria-checked', String(b.dataset.themeChoice === t));
}

let audioCtx = null;
function unlockAudio() {
  if (audioCtx || !window.AudioContext) return;
  try { audioCtx = new AudioContext(); } catch { audioCtx = null; }
}

function playSound() {
  if (!S.settings.sound || !audioCtx) return;
  try {
    if (audioCtx.state === 'suspended') audioCtx.resume();
    const now = audioCtx.currentTime;
    for (const [i, freq] of [880, 1175].entries()) {
      const osc = audioCtx.createOscillator();
      const gain = audioCtx.createGain();
      osc.type = 'sine';
      osc.frequency.value = freq;
      const t0 = now + i * 0.09;
      gain.gain.setValueAtTime(0.0001, t0);
      gain.gain.exponentialRampToValueAtTime(0.12, t0 + 0.015);
      gain.gain.exponentialRampToValueAtTime(0.0001, t0 + 0.16);
      osc.connect(gain).connect(audioCtx.destination);
      osc.start(t0);
      osc.stop(t0 + 0.18);
    }
  } catch { /* no audio device */ }
}

function desktopNotify(c, m) {
  if (!S.settings.desktop || !('Notification' in window) || Notification.permission !== 'granted') return;
  if (document.visibilityState === 'visible' && document.hasFocus()) return;
  try {
    const n = new Notification(convName(c), { body: previewText(c, m), tag: c.cid });
    n.onclick = () => {
      window.focus();
      openConv(c.cid);
      n.close();
    };
  } catch { /* not allowed here */ }
}

/** Someone else's live message that the reader cannot see: the sound and the notification, as set. */
export function announce(c, m) {
  if (c.muted) return; // muted here as on the phone: no sound, no notification
  playSound();
  desktopNotify(c, m);
}

export function openSettings() {
  applyTheme();
  $('#set-sound').checked = !!S.settings.sound;
  const desk = $('#set-desktop');
  const supported = 'Notification' in window;
  desk.disabled = !supported;
  desk.checked = supported && S.settings.desktop && Notification.permission === 'granted';
  $('#desktop-hint').textContent = !supported ? 'Not supported by this browser'
    : Notification.permission === 'denied' ? 'Blocked in the browser’s site settings'
      : 'Show a notification while GoChat is in the background';
  $('#set-friend-policy').value = (S.me && S.me.friend_policy) || 'approve';
  loadBlocked();
  openDialog('#dlg-settings');
}

async function loadBlocked() {
  const box = $('#blocked-list');
  let users;
  try {
    users = (await api.get('/blocks')).users || [];
  } catch (e) {
    box.replaceChildren(h('p', { class: 'form-error' }, e.message));
    return;
  }
  users.forEach(rememberUser);
  box.replaceChildren(...(users.length ? users.map((u) => h('div', { class: 'blocked-row', 'data-testid': 'blocked-user', 'data-user-id': u.user_id },
    userAvatar(u.user_id, 'sm'),
    h('span', { class: 'member-name' }, userName(u.user_id)),
    h('button', {
      type: 'button', class: 'btn btn-sm', 'data-testid': 'unblock', onclick: async () => {
        try {
          await api.del(`/blocks/${encodeURIComponent(u.user_id)}`);
          toast(`${userName(u.user_id)} is unblocked`);
        } catch (e) { toastError(e, 'Could not unblock'); }
        loadBlocked();
      },
    }, 'Unblock'))) : [h('p', { class: 'hint' }, 'Nobody is blocked.')]));
}

async function setFriendPolicy(policy) {
  try {
    S.me = await api.patch('/users/me', { friend_policy: policy });
    toast('Saved');
  } catch (e) {
    toastError(e, 'Could not save');
    $('#set-friend-policy').value = (S.me && S.me.friend_policy) || 'approve';
  }
}

async function setDesktop(on) {
  if (!on) {
    S.settings.desktop = false;
    saveSettings();
    return;
  }
  let perm = Notification.permission;
  if (perm === 'default') {
    try { perm = await Notification.requestPermission(); } catch { perm = 'denied'; }
  }
  S.settings.desktop = perm === 'granted';
  $('#set-desktop').checked = S.settings.desktop;
  if (perm !== 'granted') $('#desktop-hint').textContent = 'The browser did not allow notifications';
  saveSettings();
}

export function wireSettings() {
  for (const b of $$('[data-theme-choice]')) {
    b.addEventListener('click', () => {
      S.settings.theme = b.dataset.themeChoice;
      saveSettings();
      applyTheme();
    });
  }
  $('#set-sound').addEventListener('change', (ev) => {
    S.settings.sound = ev.target.checked;
    saveSettings();
    if (S.settings.sound) { unlockAudio(); playSound(); }
  });
  $('#set-desktop').addEventListener('change', (ev) => setDesktop(ev.target.checked));
  $('#set-friend-policy').addEventListener('change', (ev) => setFriendPolicy(ev.target.value));
  for (const type of ['pointerdown', 'keydown']) document.addEventListener(type, unlockAudio, { once: true, capture: true });
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', applyTheme);
}
