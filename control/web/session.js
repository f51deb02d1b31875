// Layer 2 (services): the signed-in session: the token kept in localStorage,
// entering the app after sign-in or at start-up, and leaving it (log out, or a
// dead token). Which screen shows is the shell's business: it listens to
// `signed-in` and `signed-out`.

import { storage } from './util.js';
import { refreshConversations } from './conversations.js';
import { loadFriends, loadGroups, loadRequests } from './loaders.js';
import { loadOutbox, outboxKey } from './outbox.js';
import { api, sock } from './transport.js';
import { changed, publish, rememberUser, S } from './store.js';

export const SESSION_KEY = 'gochat.session';
const FLASH_KEY = 'gochat.flash';

let leaving = false;
function sessionExpired() {
  if (leaving) return;
  leaving = true;
  sock.stop();
  storage.remove(SESSION_KEY);
  sessionStorage.setItem(FLASH_KEY, 'Your session has ended. Sign in again.');
  location.reload();
}

export async function logout() {
  if (leaving) return;
  leaving = true;
  sock.stop();
  try { await api.post('/auth/logout'); } catch { /* the token dies with the session anyway */ }
  storage.remove(SESSION_KEY);
  storage.remove(outboxKey());
  location.reload();
}

export async function enterApp() {
  api.token = S.session.token;
  try {
    S.me = await api.get('/users/me');
  } catch (e) {
    if (e.status === 401) return; // sessionExpired() handles it
    publish('signed-out', e.message);
    return;
  }
  rememberUser(S.me);
  publish('signed-in');
  loadOutbox();
  changed();
  sock.start();
  setTimeout(() => { if (!S.everConnected) { S.showBanner = true; changed(); } }, 1500);
  await Promise.all([refreshConversations(), loadFriends(), loadRequests(), loadGroups()]);
}

/** At start-up: back into the app with a stored token that has not expired, else the sign-in screen. */
export function resumeSession() {
  api.onUnauthorized = sessionExpired;
  const flash = sessionStorage.getItem(FLASH_KEY);
  sessionStorage.removeItem(FLASH_KEY);
  const saved = storage.get(SESSION_KEY);
  if (saved && saved.token && (!saved.expires_at || saved.expires_at * (saved.expires_at < 1e12 ? 1000 : 1) > Date.now())) {
    S.session = saved;
    enterApp();
  } else {
    storage.remove(SESSION_KEY);
    publish('signed-out', flash || '');
  }
}
