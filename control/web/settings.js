// Layer 3 (views): settings, kept in localStorage: the theme, the message
// sound and desktop notifications, with the dialog that changes them. The
// sound is synthesised (no audio file); browsers allow audio only after a user
// gesture, hence unlockAudio on the first pointer or key press.

import { $, $$, storage } from './util.js';
import { convName, S, SETTINGS_KEY } from './store.js';
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
  openDialog('#dlg-settings');
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
  for (const type of ['pointerdown', 'keydown']) document.addEventListener(type, unlockAudio, { once: true, capture: true });
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', applyTheme);
}
