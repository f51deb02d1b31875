// The signed-in session: the REST client and the WebSocket, the token kept in
// localStorage, entering the app after sign-in, and leaving it (log out, or a
// dead token). The socket URL comes from the server's /client/config because
// the WebSocket listener (the edge) is not the one that served this page.

import { Api, Socket } from './net.js';
import { $, $$, storage, uuid } from './util.js';
import { showAuth } from './auth.js';
import { refreshConversations } from './conversations.js';
import { loadOutbox, outboxKey } from './outbox.js';
import { render, renderMe } from './shell.js';
import { loadFriends, loadGroups, rememberUser, S } from './store.js';

export const SESSION_KEY = 'gochat.session';
const FLASH_KEY = 'gochat.flash';

export const api = new Api('/api/v1');
export const sock = new Socket(wsUrl);

let wsConfig = null;
async function wsUrl() {
  if (!wsConfig) {
    try {
      wsConfig = await api.get('/client/config');
    } catch (e) {
      if (e.status === 404) {
        const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
        wsConfig = { ws_url: `${proto}//${location.hostname}:8090/ws` };
      } else {
        throw e;
      }
    }
  }
  let base = wsConfig.ws_url;
  if (base.startsWith('/')) base = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${base}`;
  const u = new URL(base);
  u.searchParams.set('token', S.session.token);
  u.searchParams.set('device_id', deviceId());
  return u.href;
}

/** One device per tab, so two tabs of one browser do not replace each other. */
function deviceId() {
  let id = sessionStorage.getItem('gochat.device');
  if (!id) {
    id = `web-${uuid().slice(0, 8)}`;
    sessionStorage.setItem('gochat.device', id);
  }
  return id;
}

let leaving = false;
function sessionExpired() {
  if (leaving) return;
  leaving = true;
  sock.stop();
  storage.remove(SESSION_KEY);
  sessionStorage.setItem(FLASH_KEY, 'Your session has ended. Sign in again.');
  location.reload();
}

async function logout() {
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
    showAuth('login', e.message);
    return;
  }
  rememberUser(S.me);
  $('#auth-screen').hidden = true;
  $('#main-screen').hidden = false;
  loadOutbox();
  renderMe();
  render();
  sock.start();
  setTimeout(() => { if (!S.everConnected) { S.showBanner = true; render(); } }, 1500);
  await Promise.all([refreshConversations(), loadFriends(), loadGroups()]);
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
    showAuth('login', flash || '');
  }
}

export function wireSession() {
  $('#dlg-kicked').addEventListener('cancel', (ev) => ev.preventDefault());
  for (const b of $$('[data-action="logout"]')) b.addEventListener('click', logout);
  $('#kicked-reconnect').addEventListener('click', () => {
    $('#dlg-kicked').close();
    sock.start();
  });
  window.addEventListener('storage', (ev) => {
    if (ev.key === SESSION_KEY && !ev.newValue && S.me) location.reload();
  });
}
