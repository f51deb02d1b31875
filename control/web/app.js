// GoChat web client. Speaks only the public protocol (PROTOCOL.md): REST under
// /api/v1 and one WebSocket, like any third-party client.
//
// State lives in `S`; the DOM is derived from it by render(). Messages are kept
// per conversation keyed by seq_id, so pulls after a reconnect or a gap merge
// without duplicates; unacked sends live in an outbox (memory + localStorage)
// and are resent with the same client_msg_id until the server acks them.

import { Api, ApiError, Socket } from './net.js';
import { singleConversationId } from './md5.js';
import { EMOJI } from './emoji.js';
import {
  h, icon, $, $$, reconcile, dayKey, fmtTime, fmtFull, fmtListTime, fmtDay, fmtSize,
  uuid, safeUrl, debounce, storage,
} from './util.js';

const api = new Api('/api/v1');
const sock = new Socket(wsUrl);

const SESSION_KEY = 'gochat.session';
const SETTINGS_KEY = 'gochat.settings';
const FLASH_KEY = 'gochat.flash';
const PAGE_SIZE = 40;
const TYPING_SEND_EVERY = 3000;
const TYPING_SHOW_FOR = 5000;
const ACK_TIMEOUT = 8000;
const SYSTEM_USER = '0';

const S = {
  session: null, // {token, user_id, expires_at}
  me: null, // profile
  users: new Map(), // user_id -> profile (+ online)
  userFetches: new Map(),
  groups: new Map(), // group_id -> group
  groupFetches: new Map(),
  members: new Map(), // group_id -> [{user_id, role}]
  memberFetches: new Map(),
  friends: [], // user ids
  myGroups: [], // group ids
  convs: new Map(), // conversation_id -> conversation
  current: null, // conversation_id open on the right
  mode: 'chats', // 'chats' | 'contacts'
  view: 'list', // phone: 'list' | 'chat'
  filter: '',
  outbox: [], // unacked sends, oldest first
  uploads: [], // uploads in progress {id, cid, kind, name, previewUrl}
  pendingReads: new Map(), // cid -> seq, posted when the socket is back
  conn: 'connecting',
  everConnected: false,
  drafts: new Map(), // cid -> {text, mentions: [{id, label}]}
  typing: new Map(), // cid -> {user_id, until}
  lastTypingSent: 0,
  infoOpen: false,
  settings: { theme: 'system', sound: true, desktop: false, ...storage.get(SETTINGS_KEY, {}) },
};

// ====================================================================
// helpers on state
// ====================================================================

const myId = () => (S.me ? S.me.user_id : S.session && S.session.user_id);
const isPhone = () => matchMedia('(max-width: 720px)').matches;

function userName(id) {
  if (id === SYSTEM_USER) return 'System';
  const u = S.users.get(id);
  if (!u) {
    ensureUser(id);
    return `User ${id}`;
  }
  return u.nickname || u.username || `User ${id}`;
}

function ensureUser(id, force = false) {
  if (!id || id === SYSTEM_USER) return Promise.resolve(null);
  if (!force && S.users.has(id)) return Promise.resolve(S.users.get(id));
  if (S.userFetches.has(id)) return S.userFetches.get(id);
  const p = api.get(`/users/${encodeURIComponent(id)}`)
    .then((u) => {
      S.users.set(id, { ...(S.users.get(id) || {}), ...u });
      render();
      return u;
    })
    .catch((e) => {
      if (e.status === 404) S.users.set(id, { user_id: id, username: '', nickname: 'Deleted user' });
      return null;
    })
    .finally(() => S.userFetches.delete(id));
  S.userFetches.set(id, p);
  return p;
}

function rememberUser(u) {
  if (!u || !u.user_id) return;
  S.users.set(u.user_id, { ...(S.users.get(u.user_id) || {}), ...u });
}

function ensureGroup(gid, force = false) {
  if (!gid) return Promise.resolve(null);
  if (!force && S.groups.has(gid)) return Promise.resolve(S.groups.get(gid));
  if (S.groupFetches.has(gid)) return S.groupFetches.get(gid);
  const p = api.get(`/groups/${encodeURIComponent(gid)}`)
    .then((g) => {
      S.groups.set(gid, g);
      const c = S.convs.get(g.conversation_id);
      if (c) c.name = g.name;
      render();
      if (S.infoOpen) renderInfo();
      return g;
    })
    .catch(() => null)
    .finally(() => S.groupFetches.delete(gid));
  S.groupFetches.set(gid, p);
  return p;
}

function ensureMembers(gid, force = false) {
  if (!force && S.members.has(gid)) return Promise.resolve(S.members.get(gid));
  if (S.memberFetches.has(gid)) return S.memberFetches.get(gid);
  const p = api.get(`/groups/${encodeURIComponent(gid)}/members`)
    .then((res) => {
      const members = res.members || [];
      S.members.set(gid, members);
      for (const m of members.slice(0, 300)) if (!S.users.has(m.user_id)) ensureUser(m.user_id);
      render();
      if (S.infoOpen) renderInfo();
      return members;
    })
    .catch(() => S.members.get(gid) || [])
    .finally(() => S.memberFetches.delete(gid));
  S.memberFetches.set(gid, p);
  return p;
}

function convName(c) {
  if (c.type === 'group') {
    const g = S.groups.get(c.group_id);
    return (g && g.name) || c.name || `Group ${c.group_id}`;
  }
  if (S.users.has(c.peer_user_id)) return userName(c.peer_user_id);
  ensureUser(c.peer_user_id);
  return c.name || `User ${c.peer_user_id}`;
}

function newConv(cid, init) {
  return {
    cid,
    type: init.type || (cid.startsWith('g') ? 'group' : 'single'),
    peer_user_id: init.peer_user_id || null,
    group_id: init.group_id || (cid.startsWith('g') ? cid.slice(1) : null),
    name: init.name || '',
    last_seq_id: 0,
    read_seq_id: 0,
    unread: 0,
    unread_mentions: 0,
    last_message: null,
    created: Date.now(),
    msgs: new Map(),
    loaded: false,
    loading: null,
    pulling: null,
    minSeq: 1,
    maxSeq: 0,
    peerRead: 0,
    serverKnown: false,
  };
}

function ensureConv(cid, init = {}) {
  let c = S.convs.get(cid);
  if (!c) {
    c = newConv(cid, init);
    S.convs.set(cid, c);
    if (c.type === 'group') ensureGroup(c.group_id);
    else if (c.peer_user_id) ensureUser(c.peer_user_id);
  } else {
    if (init.peer_user_id && !c.peer_user_id) c.peer_user_id = init.peer_user_id;
    if (init.group_id && !c.group_id) c.group_id = init.group_id;
  }
  return c;
}

function convForUser(uid) {
  return ensureConv(singleConversationId(myId(), uid), { type: 'single', peer_user_id: uid });
}

function convForGroup(gid) {
  return ensureConv(`g${gid}`, { type: 'group', group_id: gid });
}

function convOfMessage(m) {
  if (m.group_id) return ensureConv(m.conversation_id, { type: 'group', group_id: m.group_id });
  const peer = m.from_user_id === myId() ? m.to_user_id : m.from_user_id;
  return ensureConv(m.conversation_id, { type: 'single', peer_user_id: peer });
}

function isVisible(c) {
  return !!c && S.current === c.cid && document.visibilityState === 'visible'
    && !$('#main-screen').hidden && (!isPhone() || S.view === 'chat');
}

/** true / false when known, undefined while we are offline ourselves or never asked. */
function onlineOf(uid) {
  if (S.conn !== 'open') return undefined;
  const u = S.users.get(uid);
  return u ? u.online : undefined;
}

function mentionsMe(m) {
  const ms = m.mentions || [];
  return ms.includes(myId()) || ms.includes('all');
}

function isSystem(m) {
  return m.from_user_id === SYSTEM_USER || m.message_type === 'system' || m.message_type === 'system_group';
}

// ====================================================================
// settings, theme, sound, desktop notifications
// ====================================================================

function saveSettings() {
  storage.set(SETTINGS_KEY, S.settings);
}

function applyTheme() {
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

// ====================================================================
// sign in / create account
// ====================================================================

const USERNAME_RE = /^[A-Za-z0-9_.-]{3,32}$/;

function showAuth(mode = 'login', flash = '') {
  $('#main-screen').hidden = true;
  $('#auth-screen').hidden = false;
  setAuthMode(mode);
  if (flash) showAuthError(flash);
  $('#auth-username').focus();
}

function setAuthMode(mode) {
  const form = $('#auth-form');
  form.dataset.mode = mode;
  const reg = mode === 'register';
  $('#tab-login').setAttribute('aria-selected', String(!reg));
  $('#tab-register').setAttribute('aria-selected', String(reg));
  $('#auth-title').textContent = reg ? 'Create your account' : 'Welcome back';
  $('#auth-sub').textContent = reg ? 'Pick a username and a password to get started.' : 'Sign in to continue your conversations.';
  $('#auth-submit').textContent = reg ? 'Create account' : 'Sign in';
  $('#auth-switch-text').textContent = reg ? 'Already have an account?' : 'New to GoChat?';
  $('#auth-switch').textContent = reg ? 'Sign in' : 'Create an account';
  $('#auth-password').autocomplete = reg ? 'new-password' : 'current-password';
  clearAuthErrors();
}

function clearAuthErrors() {
  for (const el of $$('#auth-form .field-error')) el.textContent = '';
  for (const el of $$('#auth-form input')) el.removeAttribute('aria-invalid');
  $('#auth-error').hidden = true;
}

function fieldError(name, message) {
  const input = $(`#auth-${name}`);
  $(`#err-${name}`).textContent = message;
  input.setAttribute('aria-invalid', 'true');
  input.setAttribute('aria-describedby', `err-${name}`);
}

function showAuthError(message) {
  const el = $('#auth-error');
  el.textContent = message;
  el.hidden = false;
}

function validateAuth(reg) {
  const username = $('#auth-username').value.trim();
  const password = $('#auth-password').value;
  let ok = true;
  if (!username) {
    fieldError('username', 'Enter your username.');
    ok = false;
  } else if (reg && !USERNAME_RE.test(username)) {
    fieldError('username', '3 to 32 characters: letters, digits, “_”, “.” or “-”.');
    ok = false;
  }
  if (!password) {
    fieldError('password', 'Enter your password.');
    ok = false;
  } else if (reg && (new TextEncoder().encode(password).length < 8 || password.length > 128)) {
    fieldError('password', 'At least 8 characters.');
    ok = false;
  }
  if (reg) {
    const nick = $('#auth-nickname').value.trim();
    if ([...nick].length > 50) {
      fieldError('nickname', 'At most 50 characters.');
      ok = false;
    }
    if ($('#auth-confirm').value !== password) {
      fieldError('confirm', 'The passwords do not match.');
      ok = false;
    }
  }
  return ok;
}

async function onAuthSubmit(ev) {
  ev.preventDefault();
  const reg = $('#auth-form').dataset.mode === 'register';
  clearAuthErrors();
  if (!validateAuth(reg)) {
    const bad = $('#auth-form [aria-invalid="true"]');
    if (bad) bad.focus();
    return;
  }
  const username = $('#auth-username').value.trim();
  const password = $('#auth-password').value;
  const btn = $('#auth-submit');
  btn.disabled = true;
  const label = btn.textContent;
  btn.textContent = reg ? 'Creating account…' : 'Signing in…';
  try {
    if (reg) {
      const nickname = $('#auth-nickname').value.trim();
      await api.post('/auth/register', nickname ? { username, password, nickname } : { username, password });
    }
    const res = await api.post('/auth/login', { username, password, device_id: 'web' });
    S.session = { token: res.token, user_id: res.user_id, expires_at: res.expires_at };
    storage.set(SESSION_KEY, S.session);
    $('#auth-password').value = '';
    $('#auth-confirm').value = '';
    await enterApp();
  } catch (e) {
    if (e.status === 409) fieldError('username', 'This username is taken. Try another one.');
    else if (e.status === 401) showAuthError('Wrong username or password.');
    else if (e.status === 400) showAuthError(e.message);
    else if (e.status === 429) showAuthError('Too many attempts. Wait a moment and try again.');
    else showAuthError(e.message || 'Something went wrong. Try again.');
  } finally {
    btn.disabled = false;
    btn.textContent = label;
  }
}

// ====================================================================
// session
// ====================================================================

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

async function enterApp() {
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

// ====================================================================
// the socket
// ====================================================================

sock.onState = (state) => {
  S.conn = state;
  if (state === 'open') {
    S.everConnected = true;
    onConnected();
  }
  if (state === 'offline' && S.everConnected) S.showBanner = true;
  if (state === 'kicked') render();
  render();
};

sock.onOpenFailed = (count) => {
  // A refused upgrade looks like a network error; ask the API whether the
  // token still works (a 401 ends the session).
  if (count === 2 || count % 5 === 0) api.get('/users/me').catch(() => {});
};

sock.onFrame = (f) => {
  switch (f.type) {
    case 'message': onMessageFrame(f); break;
    case 'ack': onAck(f); break;
    case 'notify': onNotify(f); break;
    case 'read': onReadFrame(f); break;
    case 'typing': onTypingFrame(f); break;
    case 'presence': onPresence(f); break;
    case 'error': onErrorFrame(f); break;
    case 'kick': onKick(f); break;
    default: break; // pong and anything newer
  }
};

async function onConnected() {
  S.showBanner = false;
  flushOutbox();
  for (const [cid, seq] of S.pendingReads) sock.send({ type: 'read', conversation_id: cid, seq_id: seq });
  S.pendingReads.clear();
  await refreshConversations();
  // Anything stored while we were away: pull after the last seq we hold.
  await Promise.all([...S.convs.values()].filter((c) => c.loaded).map((c) => pullAfter(c)));
  const c = S.convs.get(S.current);
  if (c && c.type === 'single') ensureUser(c.peer_user_id, true);
  if (c && c.type === 'group') { ensureGroup(c.group_id, true); ensureMembers(c.group_id, true); }
  loadFriends();
  loadGroups();
}

function onMessageFrame(m) {
  const c = convOfMessage(m);
  delete m.type;
  if (c.loaded && m.seq_id > c.maxSeq + 1 && !c.msgs.has(m.seq_id - 1)) {
    // A gap: something between what we hold and this one never reached us.
    ingest(m, true);
    pullAfter(c);
  } else {
    ingest(m, true);
  }
  render();
}

/** Takes one stored message into its conversation (from a frame, an ack or a pull). */
function ingest(m, live) {
  const c = convOfMessage(m);
  c.serverKnown = true;
  const me = myId();
  if (m.from_user_id === me && m.client_msg_id) dropOutbox(m.client_msg_id);
  if (c.loaded || live) c.msgs.set(m.seq_id, m);
  if (c.loaded) advance(c);
  if (m.seq_id > c.last_seq_id) {
    c.last_seq_id = m.seq_id;
    c.last_message = m;
    if (m.from_user_id !== me && m.seq_id > c.read_seq_id) {
      if (isVisible(c)) {
        markReadSoon(c);
      } else {
        c.unread += 1;
        if (mentionsMe(m)) c.unread_mentions += 1;
        if (live) {
          playSound();
          desktopNotify(c, m);
        }
      }
    }
  }
  const t = S.typing.get(c.cid);
  if (t && t.user_id === m.from_user_id) S.typing.delete(c.cid);
  if (m.message_type === 'system_group' && c.group_id) {
    ensureGroup(c.group_id, true);
    if (S.members.has(c.group_id) || S.current === c.cid) ensureMembers(c.group_id, true);
    if (live) loadGroups();
  }
}

function advance(c) {
  while (c.msgs.has(c.maxSeq + 1)) c.maxSeq += 1;
}

function onAck(a) {
  const i = S.outbox.findIndex((e) => e.client_msg_id === a.client_msg_id);
  if (i < 0) return; // a repeat ack of something already in place
  const entry = S.outbox[i];
  const f = entry.frame;
  const m = {
    message_id: a.message_id,
    conversation_id: a.conversation_id,
    seq_id: a.seq_id,
    from_user_id: myId(),
    message_type: f.message_type,
    content: f.content,
    metadata: f.metadata || {},
    mentions: f.mentions || [],
    client_msg_id: f.client_msg_id,
    timestamp: a.timestamp,
  };
  if (f.group_id) m.group_id = f.group_id;
  else m.to_user_id = f.to_user_id;
  const c = convOfMessage(m);
  // The server knows the conversation id; the one we computed must agree.
  if (entry.cid !== a.conversation_id) {
    const old = S.convs.get(entry.cid);
    if (old && old !== c && S.current === entry.cid) S.current = c.cid;
  }
  const gap = c.loaded && a.seq_id > c.maxSeq + 1;
  ingest(m, true);
  if (gap) pullAfter(c);
  render();
}

function onNotify(f) {
  const c = ensureConv(f.conversation_id, {});
  if (c.loaded) pullAfter(c);
  else refreshConversationsSoon();
}

function onReadFrame(f) {
  const c = S.convs.get(f.conversation_id);
  if (!c) return;
  if (f.user_id === myId()) {
    // Read on another device of mine.
    if (f.seq_id > c.read_seq_id) c.read_seq_id = f.seq_id;
    if (f.seq_id >= c.last_seq_id) {
      c.unread = 0;
      c.unread_mentions = 0;
    } else {
      refreshConversationsSoon();
    }
  } else if (c.type === 'single') {
    c.peerRead = Math.max(c.peerRead, f.seq_id);
  }
  render();
}

function onTypingFrame(f) {
  if (f.user_id === myId()) return;
  const c = S.convs.get(f.conversation_id);
  if (!c) return;
  S.typing.set(c.cid, { user_id: f.user_id, until: Date.now() + TYPING_SHOW_FOR });
  setTimeout(render, TYPING_SHOW_FOR + 50);
  render();
}

function onPresence(f) {
  const u = S.users.get(f.user_id);
  if (u) u.online = !!f.online;
  else S.users.set(f.user_id, { user_id: f.user_id, online: !!f.online });
  render();
}

function onErrorFrame(f) {
  if (!f.client_msg_id) return; // not about a send of ours
  const e = S.outbox.find((x) => x.client_msg_id === f.client_msg_id);
  if (!e) return;
  if (f.code === 'rate_limited' || f.code === 'internal' || f.code === 'unavailable') {
    e.sentAt = 0;
    setTimeout(flushOutbox, 1500 + Math.random() * 1500);
  } else {
    e.status = 'failed';
    e.error = f.message || f.code;
    saveOutbox();
  }
  render();
}

function onKick(f) {
  $('#kicked-text').textContent = `The server ended this session: ${f.reason || 'signed in elsewhere'}.`;
  openDialog('#dlg-kicked');
}

// ====================================================================
// conversations: list, history, pulls, read cursor
// ====================================================================

async function refreshConversations() {
  let res;
  try {
    res = await api.get('/conversations');
  } catch {
    return;
  }
  for (const s of res.conversations || []) {
    const c = ensureConv(s.conversation_id, {
      type: s.type, peer_user_id: s.peer_user_id, group_id: s.group_id, name: s.name,
    });
    c.serverKnown = true;
    if (s.name) c.name = s.name;
    if (s.last_seq_id >= c.last_seq_id) {
      c.last_seq_id = s.last_seq_id;
      c.read_seq_id = Math.max(c.read_seq_id, s.read_seq_id || 0);
      c.unread = s.unread || 0;
      c.unread_mentions = s.unread_mentions || 0;
      if (s.last_message) c.last_message = s.last_message;
    }
    if (c.loaded && !c.msgs.size && c.last_seq_id > 0 && !c.loading) {
      // Opened before we knew it had a history (e.g. right after start-up).
      c.loaded = false;
      if (S.current === c.cid) loadLatest(c);
    } else if (c.loaded && c.last_seq_id > c.maxSeq) {
      pullAfter(c);
    }
    if (isVisible(c)) markReadSoon(c);
  }
  render();
}
const refreshConversationsSoon = debounce(refreshConversations, 300);

async function loadFriends() {
  try {
    const res = await api.get('/friends');
    S.friends = (res.friends || []).map((u) => { rememberUser(u); return u.user_id; });
    render();
  } catch { /* keep what we have */ }
}

async function loadGroups() {
  try {
    const res = await api.get('/groups');
    S.myGroups = (res.groups || []).map((g) => { S.groups.set(g.group_id, g); return g.group_id; });
    render();
  } catch { /* keep what we have */ }
}

function historyUrl(c, param, seq, limit = PAGE_SIZE) {
  return `/conversations/${encodeURIComponent(c.cid)}/messages?${param}=${seq}&limit=${limit}`;
}

/** The newest page of a conversation, the first time it is opened. */
function loadLatest(c) {
  if (c.loaded) return Promise.resolve();
  if (c.loading) return c.loading;
  c.loading = (async () => {
    if (!c.serverKnown && c.last_seq_id === 0) {
      c.loaded = true;
      c.minSeq = 1;
      return;
    }
    // Frames may arrive while the page is on its way: keep those above `top`.
    const top = c.last_seq_id;
    const res = await api.get(historyUrl(c, 'before_seq', top + 1));
    const page = res.messages || [];
    const live = [...c.msgs.values()].filter((m) => m.seq_id > top);
    c.msgs.clear();
    for (const m of page) c.msgs.set(m.seq_id, m);
    for (const m of live) c.msgs.set(m.seq_id, m);
    c.minSeq = page.length ? page[0].seq_id : top + 1;
    c.maxSeq = page.length ? page[page.length - 1].seq_id : top;
    if (c.minSeq <= 1) c.minSeq = 1;
    c.loaded = true;
    for (const m of page) {
      if (m.from_user_id === myId() && m.client_msg_id) dropOutbox(m.client_msg_id);
    }
    advance(c);
    await pullAfter(c);
  })()
    .catch((e) => { toastError(e, 'Could not load the messages'); })
    .finally(() => { c.loading = null; render(); });
  return c.loading;
}

/** Everything after the last contiguous seq we hold (reconnect, gap, notify). */
function pullAfter(c) {
  if (!c.loaded) return Promise.resolve();
  if (c.pulling) {
    c.pullAgain = true;
    return c.pulling;
  }
  c.pulling = (async () => {
    do {
      c.pullAgain = false;
      for (let guard = 0; guard < 50; guard++) {
        const res = await api.get(historyUrl(c, 'after_seq', c.maxSeq, 200));
        const page = res.messages || [];
        for (const m of page) ingest(m, false);
        if (page.length) c.maxSeq = Math.max(c.maxSeq, page[page.length - 1].seq_id);
        advance(c);
        if (!res.has_more || !page.length) break;
      }
    } while (c.pullAgain);
  })()
    .catch(() => { /* the next reconnect pulls again */ })
    .finally(() => { c.pulling = null; render(); });
  return c.pulling;
}

async function loadOlder(c) {
  if (!c.loaded || c.loadingOlder || c.minSeq <= 1) return;
  c.loadingOlder = true;
  renderHistoryEdge(c);
  const box = $('#messages');
  try {
    const res = await api.get(historyUrl(c, 'before_seq', c.minSeq));
    const page = res.messages || [];
    for (const m of page) c.msgs.set(m.seq_id, m);
    c.minSeq = page.length ? Math.max(1, page[0].seq_id) : 1;
    if (S.current === c.cid) {
      // Keep what the reader is looking at in place while rows appear above.
      const before = box.scrollHeight - box.scrollTop;
      renderMessages(c, { keepBottomOffset: before });
    }
  } catch (e) {
    toastError(e, 'Could not load older messages');
  } finally {
    c.loadingOlder = false;
    renderHistoryEdge(c);
  }
}

function markReadSoon(c) {
  clearTimeout(c.readTimer);
  c.readTimer = setTimeout(() => markRead(c), 150);
}

function markRead(c) {
  if (!isVisible(c)) return;
  const seq = Math.max(c.last_seq_id, c.maxSeq);
  const changed = seq > c.read_seq_id || c.unread > 0 || c.unread_mentions > 0;
  if (!changed || seq === 0) return;
  c.read_seq_id = Math.max(c.read_seq_id, seq);
  c.unread = 0;
  c.unread_mentions = 0;
  if (!sock.send({ type: 'read', conversation_id: c.cid, seq_id: seq })) {
    S.pendingReads.set(c.cid, seq);
  }
  render();
}

// ====================================================================
// the outbox
// ====================================================================

const outboxKey = () => `gochat.outbox.${myId()}`;

function loadOutbox() {
  const saved = storage.get(outboxKey(), []);
  S.outbox = Array.isArray(saved) ? saved.filter((e) => e && e.client_msg_id && e.frame) : [];
  for (const e of S.outbox) {
    e.sentAt = 0;
    const f = e.frame;
    ensureConv(e.cid, f.group_id ? { type: 'group', group_id: f.group_id } : { type: 'single', peer_user_id: f.to_user_id });
  }
}

function saveOutbox() {
  storage.set(outboxKey(), S.outbox.map(({ sentAt, ...rest }) => rest));
}

function dropOutbox(cmid) {
  const i = S.outbox.findIndex((e) => e.client_msg_id === cmid);
  if (i >= 0) {
    S.outbox.splice(i, 1);
    saveOutbox();
  }
}

function flushOutbox() {
  if (!sock.isOpen) return;
  for (const e of S.outbox) {
    if (e.status !== 'pending') continue;
    if (sock.send(e.frame)) e.sentAt = Date.now();
  }
}

// Unacked for too long while connected: send again, same id (the server dedups).
setInterval(() => {
  if (!sock.isOpen) return;
  const now = Date.now();
  for (const e of S.outbox) {
    if (e.status === 'pending' && (!e.sentAt || now - e.sentAt > ACK_TIMEOUT)) {
      if (sock.send(e.frame)) e.sentAt = now;
    }
  }
}, 3000);

function queueSend(c, messageType, content, metadata = {}, mentions = []) {
  const frame = {
    type: 'send',
    client_msg_id: uuid(),
    message_type: messageType,
    content,
    metadata,
    mentions,
  };
  if (c.type === 'group') frame.group_id = c.group_id;
  else frame.to_user_id = c.peer_user_id;
  const entry = { client_msg_id: frame.client_msg_id, cid: c.cid, frame, created: Date.now(), status: 'pending', sentAt: 0 };
  S.outbox.push(entry);
  saveOutbox();
  if (sock.send(frame)) entry.sentAt = Date.now();
  S.stickToBottom = true;
  render();
}

function retrySend(cmid) {
  const e = S.outbox.find((x) => x.client_msg_id === cmid);
  if (!e) return;
  e.status = 'pending';
  e.error = null;
  e.sentAt = 0;
  saveOutbox();
  flushOutbox();
  render();
}

function discardSend(cmid) {
  dropOutbox(cmid);
  render();
}

// ====================================================================
// rendering
// ====================================================================

let renderQueued = false;
function render() {
  if (renderQueued) return;
  renderQueued = true;
  setTimeout(() => {
    renderQueued = false;
    if (!S.me || $('#main-screen').hidden) return;
    renderRail();
    renderBanner();
    if (S.mode === 'chats') renderConvList();
    else renderContacts();
    renderChat();
  }, 0);
}

const AVATAR_COLORS = ['#6366f1', '#0ea5e9', '#14b8a6', '#f97316', '#ec4899', '#8b5cf6', '#10b981', '#f43f5e', '#eab308', '#06b6d4'];

function avatarColor(id) {
  // FNV-1a, so neighbouring ids ("1", "2", "3") get different colours.
  let x = 0x811c9dc5;
  for (const ch of String(id)) x = Math.imul(x ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return AVATAR_COLORS[x % AVATAR_COLORS.length];
}

function initials(name) {
  const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
  if (!parts.length) return '?';
  const first = Array.from(parts[0])[0] || '?';
  const second = parts.length > 1 ? Array.from(parts[1])[0] || '' : '';
  return (first + second).toUpperCase();
}

function avatar({ id, name, url, group = false, size = '', online = false }) {
  const el = h('span', {
    class: `avatar ${size}${group ? ' group' : ''}`,
    style: { '--avatar-bg': avatarColor(id) },
    'aria-hidden': 'true',
  });
  const src = safeUrl(url);
  if (src) el.append(h('img', { src, alt: '', loading: 'lazy', decoding: 'async' }));
  else if (group && !name) el.append(icon('users'));
  else el.append(initials(name));
  if (online) el.append(h('span', { class: 'dot' }));
  return el;
}

function userAvatar(uid, size = '') {
  const u = S.users.get(uid) || {};
  return avatar({ id: uid, name: userName(uid), url: u.avatar_url, size });
}

function convAvatar(c, size = '') {
  if (c.type === 'group') {
    const g = S.groups.get(c.group_id) || {};
    return avatar({ id: c.cid, name: convName(c), url: g.avatar_url, group: true, size });
  }
  const u = S.users.get(c.peer_user_id) || {};
  return avatar({ id: c.peer_user_id, name: convName(c), url: u.avatar_url, size, online: onlineOf(c.peer_user_id) === true });
}

function renderMe() {
  const btn = $('#nav-profile');
  btn.replaceChildren(avatar({ id: S.me.user_id, name: S.me.nickname || S.me.username, url: S.me.avatar_url, size: 'lg' }));
  btn.title = `${S.me.nickname || S.me.username} — profile`;
  $('#settings-account').textContent = `Signed in as ${S.me.username}${S.me.nickname ? ` (${S.me.nickname})` : ''}.`;
}

function totalUnread() {
  let n = 0;
  for (const c of S.convs.values()) n += c.unread || 0;
  return n;
}

function renderRail() {
  const n = totalUnread();
  const badge = $('#nav-chats-badge');
  badge.hidden = n === 0;
  badge.textContent = n > 99 ? '99+' : String(n);
  $('#nav-chats').setAttribute('aria-label', n ? `Chats, ${n} unread` : 'Chats');
  document.title = n ? `(${n}) GoChat` : 'GoChat';
  for (const [id, mode] of [['#nav-chats', 'chats'], ['#nav-contacts', 'contacts']]) {
    if (S.mode === mode) $(id).setAttribute('aria-current', 'page');
    else $(id).removeAttribute('aria-current');
  }
  $('#list-title').textContent = S.mode === 'chats' ? 'Chats' : 'Contacts';
  $('#conv-list').hidden = S.mode !== 'chats';
  $('#contact-list').hidden = S.mode !== 'contacts';
  $('#main-screen').dataset.view = S.view;
}

function renderBanner() {
  const banner = $('#conn-banner');
  const down = S.conn !== 'open';
  banner.hidden = !(down && S.showBanner) && S.conn !== 'kicked';
  banner.dataset.state = S.conn;
  $('#conn-text').textContent = S.conn === 'kicked'
    ? 'Signed out on this device'
    : (S.everConnected ? 'Offline — reconnecting…' : 'Connecting…');
}

function previewText(c, m) {
  if (!m) return '';
  let body;
  switch (m.message_type) {
    case 'image': body = '📷 Photo'; break;
    case 'file': body = `📎 ${fileName(m)}`; break;
    case 'location': body = `📍 ${m.content}`; break;
    default: body = plainText(m.content); break;
  }
  if (isSystem(m)) return body;
  if (m.from_user_id === myId()) return `You: ${body}`;
  if (c.type === 'group') return `${userName(m.from_user_id)}: ${body}`;
  return body;
}

const TOKEN_RE = /@\[user_id:(\d+|all)\]/g;

function plainText(text) {
  return String(text || '').replace(TOKEN_RE, (_, id) => (id === 'all' ? '@all' : `@${userName(id)}`));
}

function fileName(m) {
  const md = m.metadata || {};
  return md.filename || md.name || 'File';
}

function lastActivity(c) {
  let t = c.last_message ? c.last_message.timestamp : 0;
  for (const e of S.outbox) if (e.cid === c.cid) t = Math.max(t, e.created);
  return t || (c.cid === S.current ? c.created : 0);
}

function matchesFilter(...names) {
  const q = S.filter.trim().toLowerCase();
  if (!q) return true;
  return names.some((n) => n && String(n).toLowerCase().includes(q));
}

const convListCache = new Map();
function renderConvList() {
  const list = $('#conv-list');
  const convs = [...S.convs.values()]
    .filter((c) => lastActivity(c) > 0 || c.last_seq_id > 0)
    .filter((c) => matchesFilter(convName(c), c.type === 'single' && (S.users.get(c.peer_user_id) || {}).username))
    .sort((a, b) => lastActivity(b) - lastActivity(a));
  const typingNow = Date.now();
  const items = convs.map((c) => {
    const name = convName(c);
    const pending = S.outbox.filter((e) => e.cid === c.cid);
    const lastPending = pending[pending.length - 1];
    const typing = S.typing.get(c.cid);
    const isTyping = typing && typing.until > typingNow;
    let preview;
    if (isTyping) preview = c.type === 'group' ? `${userName(typing.user_id)} is typing…` : 'typing…';
    else if (lastPending && (!c.last_message || lastPending.created >= c.last_message.timestamp)) {
      preview = `${lastPending.status === 'failed' ? '⚠ ' : '🕓 '}${previewText(c, { ...lastPending.frame, from_user_id: myId() })}`;
    } else preview = previewText(c, c.last_message);
    const time = fmtListTime(lastActivity(c));
    const u = c.type === 'single' ? S.users.get(c.peer_user_id) || {} : {};
    const g = c.type === 'group' ? S.groups.get(c.group_id) || {} : {};
    const sig = JSON.stringify([name, preview, time, c.unread, c.unread_mentions, S.current === c.cid,
      !!isTyping, u.avatar_url, onlineOf(c.peer_user_id), g.avatar_url]);
    return {
      key: c.cid,
      sig,
      make: () => h('button', {
        type: 'button',
        class: `item${c.unread ? ' unread' : ''}`,
        role: 'listitem',
        'aria-current': S.current === c.cid ? 'true' : 'false',
        'data-testid': 'conv-item',
        'data-cid': c.cid,
        'data-name': name,
        'data-unread': String(c.unread || 0),
        onclick: () => openConv(c.cid),
      },
      convAvatar(c, 'lg'),
      h('span', { class: 'item-main' },
        h('span', { class: 'item-top' },
          h('span', { class: 'item-name', 'data-testid': 'conv-name' }, name),
          h('span', { class: 'item-time' }, time)),
        h('span', { class: 'item-bottom' },
          h('span', { class: 'item-preview', 'data-testid': 'conv-preview' },
            isTyping ? h('span', { class: 'typing' }, preview) : preview),
          c.unread_mentions > 0 ? h('span', { class: 'mention-mark', title: 'You were mentioned', 'aria-label': 'You were mentioned', 'data-testid': 'mention-marker' }, '@') : null,
          c.unread > 0 ? h('span', { class: 'badge', 'data-testid': 'unread-badge', 'aria-label': `${c.unread} unread` }, c.unread > 99 ? '99+' : String(c.unread)) : null))),
    };
  });
  if (!items.length) {
    items.push({
      key: '__empty',
      sig: S.filter,
      make: () => h('div', { class: 'list-empty' },
        S.filter ? `No conversation matches “${S.filter}”.` : h('span', {}, 'No conversations yet.', h('br'),
          h('button', { type: 'button', class: 'btn btn-primary btn-sm', onclick: () => openNewChat() }, icon('edit'), 'Start a chat'))),
    });
  }
  reconcile(list, items, convListCache);
}

const contactCache = new Map();
function renderContacts() {
  const list = $('#contact-list');
  const items = [];
  const friends = S.friends
    .map((id) => ({ id, name: userName(id), username: (S.users.get(id) || {}).username }))
    .filter((f) => matchesFilter(f.name, f.username))
    .sort((a, b) => a.name.localeCompare(b.name, undefined, { sensitivity: 'base' }));
  items.push({ key: 'h:friends', sig: String(friends.length), make: () => h('div', { class: 'list-section' }, `Friends · ${friends.length}`) });
  let letter = null;
  for (const f of friends) {
    const l = (Array.from(f.name)[0] || '#').toUpperCase();
    if (l !== letter) {
      letter = l;
      items.push({ key: `l:${l}`, sig: l, make: () => h('div', { class: 'list-section letter', 'aria-hidden': 'true' }, l) });
    }
    const u = S.users.get(f.id) || {};
    items.push({
      key: `u:${f.id}`,
      sig: JSON.stringify([f.name, u.username, u.avatar_url, onlineOf(f.id)]),
      make: () => h('button', {
        type: 'button', class: 'item', 'data-testid': 'contact-item', 'data-user-id': f.id, 'data-name': f.name,
        onclick: () => openConv(convForUser(f.id).cid),
      },
      avatar({ id: f.id, name: f.name, url: u.avatar_url, online: onlineOf(f.id) === true }),
      h('span', { class: 'item-main' },
        h('span', { class: 'item-name' }, f.name),
        h('span', { class: 'item-sub' }, u.username ? `@${u.username}` : ''))),
    });
  }
  if (!friends.length) {
    items.push({ key: 'e:friends', sig: S.filter, make: () => h('div', { class: 'list-empty' }, S.filter ? 'No friend matches.' : 'No friends yet. Use + to add one.') });
  }
  const groups = S.myGroups.map((id) => S.groups.get(id)).filter(Boolean)
    .filter((g) => matchesFilter(g.name))
    .sort((a, b) => a.name.localeCompare(b.name, undefined, { sensitivity: 'base' }));
  items.push({ key: 'h:groups', sig: String(groups.length), make: () => h('div', { class: 'list-section' }, `Groups · ${groups.length}`) });
  for (const g of groups) {
    items.push({
      key: `g:${g.group_id}`,
      sig: JSON.stringify([g.name, g.member_count, g.avatar_url]),
      make: () => h('button', {
        type: 'button', class: 'item', 'data-testid': 'contact-group', 'data-group-id': g.group_id, 'data-name': g.name,
        onclick: () => openConv(convForGroup(g.group_id).cid),
      },
      avatar({ id: g.conversation_id, name: g.name, url: g.avatar_url, group: true }),
      h('span', { class: 'item-main' },
        h('span', { class: 'item-name' }, g.name),
        h('span', { class: 'item-sub' }, `${g.member_count} member${g.member_count === 1 ? '' : 's'}`))),
    });
  }
  if (!groups.length) {
    items.push({ key: 'e:groups', sig: S.filter, make: () => h('div', { class: 'list-empty' }, S.filter ? 'No group matches.' : 'No groups yet.') });
  }
  reconcile(list, items, contactCache);
}

// ---------- the chat pane ----------

let renderedCid = null;
const msgCache = new Map();

function renderChat() {
  const c = S.convs.get(S.current);
  $('#chat-empty').hidden = !!c;
  $('#chat-pane').hidden = !c;
  if (!c) {
    renderedCid = null;
    return;
  }
  if (renderedCid !== c.cid) {
    renderedCid = c.cid;
    msgCache.clear();
    $('#msg-list').replaceChildren();
    S.stickToBottom = true;
  }
  renderHeader(c);
  renderMessages(c);
  renderHistoryEdge(c);
}

function renderHeader(c) {
  const name = convName(c);
  $('#chat-name').textContent = name;
  $('#chat-avatar').replaceChildren(convAvatar(c));
  const sub = $('#chat-sub');
  const t = S.typing.get(c.cid);
  const typing = t && t.until > Date.now();
  sub.className = '';
  if (c.type === 'group') {
    const g = S.groups.get(c.group_id);
    const count = g ? `${g.member_count} member${g.member_count === 1 ? '' : 's'}` : '';
    if (typing) {
      sub.textContent = `${userName(t.user_id)} is typing…`;
      sub.className = 'typing';
    } else sub.textContent = count;
    $('#at-btn').hidden = false;
  } else {
    const u = S.users.get(c.peer_user_id) || {};
    if (typing) {
      sub.textContent = 'typing…';
      sub.className = 'typing';
    } else if (onlineOf(c.peer_user_id) === true) {
      sub.textContent = 'Online';
      sub.className = 'online';
    } else if (onlineOf(c.peer_user_id) === false) {
      sub.textContent = 'Offline';
    } else {
      sub.textContent = u.username ? `@${u.username}` : '';
    }
    $('#at-btn').hidden = true;
  }
  sub.dataset.typing = typing ? 'true' : 'false';
  $('#info-btn').setAttribute('aria-expanded', String(S.infoOpen));
  $('#info-btn').setAttribute('aria-label', c.type === 'group' ? 'Group members and announcement' : 'Contact details');
}

function renderHistoryEdge(c) {
  const edge = $('#history-edge');
  if (!c || S.current !== c.cid) return;
  if (!c.loaded) edge.textContent = 'Loading…';
  else if (c.loadingOlder) edge.textContent = 'Loading earlier messages…';
  else if (c.minSeq <= 1) edge.textContent = c.msgs.size ? 'This is the beginning of the conversation' : '';
  else edge.textContent = '';
  edge.dataset.testid = 'history-edge';
  edge.dataset.more = String(c.loaded && c.minSeq > 1);
}

function renderMessages(c, { keepBottomOffset } = {}) {
  const box = $('#messages');
  const list = $('#msg-list');
  const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  const me = myId();
  const rows = [];
  const seqs = [...c.msgs.keys()].filter((s) => s >= c.minSeq || !c.loaded).sort((a, b) => a - b);
  for (const s of seqs) rows.push({ m: c.msgs.get(s), status: 'sent' });
  for (const e of S.outbox) {
    if (e.cid !== c.cid) continue;
    rows.push({ m: { ...e.frame, from_user_id: me, timestamp: e.created }, status: e.status, entry: e });
  }
  for (const u of S.uploads) {
    if (u.cid !== c.cid) continue;
    rows.push({ m: { message_type: u.kind, content: u.previewUrl, metadata: u.metadata, from_user_id: me, timestamp: u.created }, status: 'uploading', upload: u });
  }
  const items = [];
  let prev = null;
  let lastDay = null;
  let lastMine = null;
  for (const row of rows) if (row.m.from_user_id === me && row.status === 'sent') lastMine = row.m.seq_id;
  for (const row of rows) {
    const { m } = row;
    const day = dayKey(m.timestamp);
    if (day !== lastDay) {
      lastDay = day;
      const label = fmtDay(m.timestamp);
      items.push({ key: `d:${day}`, sig: label, make: () => h('div', { class: 'day-sep', role: 'separator' }, label) });
      prev = null;
    }
    if (isSystem(m)) {
      const text = plainText(m.content);
      items.push({
        key: `s:${m.seq_id}`,
        sig: text,
        make: () => h('div', { class: 'system-msg', 'data-testid': 'system-message', 'data-seq': m.seq_id, role: 'note' }, text),
      });
      prev = null;
      continue;
    }
    const mine = m.from_user_id === me;
    const first = !prev || prev.from_user_id !== m.from_user_id || m.timestamp - prev.timestamp > 5 * 60000;
    prev = m;
    const key = row.upload ? `u:${row.upload.id}` : row.status === 'sent' ? `s:${m.seq_id}` : `p:${m.client_msg_id}`;
    const showName = c.type === 'group' && !mine && first;
    const senderName = c.type === 'group' && !mine ? userName(m.from_user_id) : '';
    const readByPeer = mine && c.type === 'single' && row.status === 'sent' && c.peerRead >= m.seq_id;
    const showRead = readByPeer && m.seq_id === lastMine;
    const sender = S.users.get(m.from_user_id) || {};
    const sig = JSON.stringify([row.status, row.entry && row.entry.error, first, senderName, sender.avatar_url,
      readByPeer, showRead, mentionNames(m.content), m.content]);
    items.push({ key, sig, make: () => messageRow(c, m, { mine, first, showName, senderName, status: row.status, entry: row.entry, readByPeer, showRead }) });
  }
  reconcile(list, items, msgCache);
  if (keepBottomOffset !== undefined) {
    box.scrollTop = box.scrollHeight - keepBottomOffset;
  } else if (S.stickToBottom || nearBottom) {
    box.scrollTop = box.scrollHeight;
    S.stickToBottom = false;
  }
  updateJump(c);
}

function mentionNames(text) {
  const out = [];
  String(text || '').replace(TOKEN_RE, (_, id) => { out.push(id === 'all' ? 'all' : userName(id)); return ''; });
  return out.join(',');
}

function messageRow(c, m, o) {
  const status = o.status;
  const statusIcon = o.mine
    ? (status === 'pending' || status === 'uploading' ? h('span', { title: 'Sending', 'aria-label': 'Sending' }, icon('clock'))
      : status === 'failed' ? h('span', { title: 'Not sent', 'aria-label': 'Not sent' }, icon('alert'))
        : h('span', { title: o.readByPeer ? 'Read' : 'Sent', 'aria-label': o.readByPeer ? 'Read' : 'Sent' }, icon(o.readByPeer ? 'checks' : 'check')))
    : null;
  const meta = h('span', { class: 'meta' }, h('time', { datetime: new Date(m.timestamp).toISOString(), title: fmtFull(m.timestamp) }, fmtTime(m.timestamp)), statusIcon);
  let bubble;
  if (m.message_type === 'image') {
    bubble = h('div', { class: 'bubble media' }, imageThumb(m, status === 'uploading'), meta);
  } else if (m.message_type === 'file') {
    bubble = h('div', { class: 'bubble' }, fileCard(m, status === 'uploading'), meta);
  } else if (m.message_type === 'location') {
    const md = m.metadata || {};
    const href = Number.isFinite(md.latitude) && Number.isFinite(md.longitude)
      ? `https://www.openstreetmap.org/?mlat=${md.latitude}&mlon=${md.longitude}` : null;
    bubble = h('div', { class: 'bubble' }, h('div', { class: 'msg-text' }, '📍 ',
      href ? h('a', { href, target: '_blank', rel: 'noopener noreferrer' }, m.content) : m.content), meta);
  } else if (m.message_type === 'text') {
    bubble = h('div', { class: 'bubble' }, richText(m.content), meta);
  } else {
    bubble = h('div', { class: 'bubble' }, h('div', { class: 'msg-text' }, m.content || `[${m.message_type} message]`), meta);
  }
  const col = h('div', { class: 'msg-col' },
    o.showName ? h('div', { class: 'msg-sender', 'data-testid': 'message-sender' }, o.senderName) : null,
    bubble,
    status === 'failed' ? h('div', { class: 'msg-failed' },
      `Not sent${o.entry && o.entry.error ? `: ${o.entry.error}` : ''}.`,
      h('button', { type: 'button', onclick: () => retrySend(m.client_msg_id), 'data-testid': 'retry-send' }, 'Retry'),
      h('button', { type: 'button', onclick: () => discardSend(m.client_msg_id) }, 'Delete')) : null,
    o.showRead ? h('div', { class: 'read-mark', 'data-testid': 'read-mark' }, 'Read') : null);
  const showAvatar = c.type === 'group' && !o.mine;
  return h('div', {
    class: `msg${o.mine ? ' me' : ''}${o.first ? ' first' : ''}`,
    'data-testid': 'message',
    'data-seq': m.seq_id || undefined,
    'data-status': status,
    'data-from': o.mine ? 'me' : 'other',
    'data-type': m.message_type,
  },
  showAvatar ? h('div', { class: 'avatar-col' }, o.first ? userAvatar(m.from_user_id, 'sm') : null) : null,
  col);
}

const URL_RE = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;
const EMOJI_ONLY_RE = /^(?:\p{Extended_Pictographic}|\p{Emoji_Component}|\uFE0F|\u200D|\s){1,12}$/u;

function richText(text) {
  const el = h('div', { class: 'msg-text', 'data-testid': 'message-text' });
  const str = String(text || '');
  if (EMOJI_ONLY_RE.test(str) && /\p{Extended_Pictographic}/u.test(str) && !/\d/.test(str)) el.classList.add('jumbo');
  let last = 0;
  const parts = [];
  const re = new RegExp(`${TOKEN_RE.source}|${URL_RE.source}|@all\\b`, 'g');
  for (const match of str.matchAll(re)) {
    if (match.index > last) parts.push(str.slice(last, match.index));
    const tok = match[0];
    if (tok.startsWith('@[')) {
      const id = match[1];
      const isMe = id === myId() || id === 'all';
      parts.push(h('span', { class: `mention${isMe ? ' me' : ''}`, 'data-user-id': id, 'data-testid': 'mention' }, id === 'all' ? '@all' : `@${userName(id)}`));
    } else if (tok === '@all') {
      parts.push(h('span', { class: 'mention me', 'data-user-id': 'all', 'data-testid': 'mention' }, '@all'));
    } else {
      const href = safeUrl(tok);
      parts.push(href ? h('a', { href, target: '_blank', rel: 'noopener noreferrer' }, tok) : tok);
    }
    last = match.index + tok.length;
  }
  if (last < str.length) parts.push(str.slice(last));
  el.append(...parts.map((p) => (typeof p === 'string' ? document.createTextNode(p) : p)));
  return el;
}

function fitBox(w, hgt, max = 260) {
  if (!(w > 0 && hgt > 0)) return { width: 220, height: 160 };
  const scale = Math.min(1, max / Math.max(w, hgt));
  return { width: Math.max(60, Math.round(w * scale)), height: Math.max(60, Math.round(hgt * scale)) };
}

function imageThumb(m, uploading) {
  const md = m.metadata || {};
  const { width, height } = fitBox(Number(md.width), Number(md.height));
  const src = uploading ? m.content : safeUrl(m.content);
  const img = h('img', { src: src || undefined, alt: md.filename || 'Photo', width, height, decoding: 'async', 'data-testid': 'message-image' });
  img.addEventListener('load', () => {
    const box = $('#messages');
    if (box.scrollHeight - box.scrollTop - box.clientHeight < 200) box.scrollTop = box.scrollHeight;
  });
  return h('button', {
    type: 'button',
    class: 'thumb',
    style: { width: `${width}px`, height: `${height}px` },
    'aria-label': 'Open the photo',
    disabled: uploading || !src,
    onclick: () => openPreview(src, md.filename || 'photo'),
  }, img);
}

function fileCard(m, uploading) {
  const md = m.metadata || {};
  const name = fileName(m);
  const href = uploading ? null : safeUrl(m.content);
  return h('div', { class: 'file-card', 'data-testid': 'message-file' },
    h('span', { class: 'file-icon' }, icon('file')),
    h('span', { class: 'file-info' },
      h('span', { class: 'file-name', title: name, 'data-testid': 'file-name' }, name),
      h('span', { class: 'file-size', 'data-testid': 'file-size' }, uploading ? 'Uploading…' : fmtSize(md.size))),
    href ? h('a', { class: 'file-dl', href, download: name, 'aria-label': `Download ${name}`, title: 'Download', 'data-testid': 'file-download' }, icon('download')) : null);
}

function updateJump(c) {
  const box = $('#messages');
  const away = box.scrollHeight - box.scrollTop - box.clientHeight > 300;
  $('#jump-btn').hidden = !away;
  $('#jump-count').textContent = away && c.unread ? String(c.unread) : '';
}

// ---------- details panel ----------

function renderInfo() {
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
      h('div', { class: 'panel-actions' },
        isFriend ? h('p', { class: 'hint centered' }, 'In your friends') : h('button', {
          type: 'button', class: 'btn btn-primary', onclick: async (ev) => {
            ev.currentTarget.disabled = true;
            await addFriend(c.peer_user_id);
            renderInfo();
          },
        }, icon('user-plus'), 'Add friend')));
    return;
  }
  const g = S.groups.get(c.group_id) || { name: convName(c), member_count: 0 };
  const members = S.members.get(c.group_id) || [];
  const mine = members.find((m) => m.user_id === myId());
  const canEdit = mine && (mine.role === 'owner' || mine.role === 'admin');
  const roleOrder = { owner: 0, admin: 1, member: 2 };
  const sorted = [...members].sort((a, b) => (roleOrder[a.role] - roleOrder[b.role]) || userName(a.user_id).localeCompare(userName(b.user_id)));
  const ann = h('div', { class: `announcement${g.announcement ? '' : ' empty'}`, 'data-testid': 'group-announcement' }, g.announcement || 'No announcement.');
  panel.replaceChildren(
    panelClose(),
    h('div', { class: 'info-head' }, avatar({ id: c.cid, name: g.name, url: g.avatar_url, group: true, size: 'xl' }),
      h('h2', {}, g.name), h('p', { class: 'hint', 'data-testid': 'group-member-count' }, `${g.member_count} member${g.member_count === 1 ? '' : 's'}`)),
    h('h3', {}, 'Announcement'),
    ann,
    canEdit ? h('div', { class: 'row-actions' }, h('button', { type: 'button', class: 'btn btn-sm', 'data-testid': 'edit-announcement', onclick: () => editAnnouncement(c, g) }, icon('edit'), 'Edit')) : null,
    h('h3', {}, `Members · ${members.length || g.member_count}`),
    h('div', { 'data-testid': 'group-members' }, sorted.map((m) => h('div', { class: 'member', 'data-testid': 'group-member', 'data-user-id': m.user_id },
      userAvatar(m.user_id, 'sm'),
      h('span', { class: 'member-name' }, userName(m.user_id), m.user_id === myId() ? ' (you)' : ''),
      m.role !== 'member' ? h('span', { class: 'role' }, m.role) : null))),
    h('div', { class: 'panel-actions' },
      h('button', { type: 'button', class: 'btn', onclick: () => openInvite(c), 'data-testid': 'invite-members' }, icon('user-plus'), 'Add members'),
      mine && mine.role !== 'owner' ? h('button', { type: 'button', class: 'btn btn-danger-ghost', onclick: () => leaveGroup(c) }, icon('logout'), 'Leave group') : null));
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

function toggleInfo(open = !S.infoOpen) {
  S.infoOpen = open;
  const c = S.convs.get(S.current);
  if (open && c) {
    if (c.type === 'group') {
      ensureGroup(c.group_id, true);
      ensureMembers(c.group_id, true);
    } else ensureUser(c.peer_user_id, true);
  }
  renderInfo();
  render();
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
    render();
  } catch (e) { toastError(e, 'Could not leave the group'); }
}

// ====================================================================
// opening conversations, phone view
// ====================================================================

function openConv(cid) {
  const c = S.convs.get(cid);
  if (!c) return;
  saveDraft();
  const changed = S.current !== cid;
  S.current = cid;
  S.view = 'chat';
  S.mode = 'chats';
  if (changed) {
    S.infoOpen = false;
    renderInfo();
    closePopovers();
    restoreDraft();
  }
  if (c.type === 'single') ensureUser(c.peer_user_id, true);
  else {
    ensureGroup(c.group_id, true);
    ensureMembers(c.group_id);
  }
  render();
  loadLatest(c).then(() => markReadSoon(c));
  markReadSoon(c);
  if (!isPhone()) setTimeout(() => $('#composer-input').focus(), 0);
}

function backToList() {
  saveDraft();
  S.view = 'list';
  S.infoOpen = false;
  renderInfo();
  render();
  const item = $(`#conv-list [data-cid="${CSS.escape(S.current || '')}"]`);
  if (item) item.focus();
}

function setMode(mode) {
  S.mode = mode;
  if (isPhone()) S.view = 'list';
  render();
}

// ====================================================================
// composer: text, emoji, mentions, uploads, typing
// ====================================================================

function saveDraft() {
  if (!S.current) return;
  const text = $('#composer-input').value;
  const d = S.drafts.get(S.current) || { text: '', mentions: [] };
  d.text = text;
  S.drafts.set(S.current, d);
}

function restoreDraft() {
  const d = S.drafts.get(S.current);
  const input = $('#composer-input');
  input.value = d ? d.text : '';
  autosize();
}

function draftOf(cid) {
  let d = S.drafts.get(cid);
  if (!d) {
    d = { text: '', mentions: [] };
    S.drafts.set(cid, d);
  }
  return d;
}

function autosize() {
  const input = $('#composer-input');
  input.style.height = 'auto';
  input.style.height = `${Math.min(input.scrollHeight + 2, 160)}px`;
}

function sendText() {
  const c = S.convs.get(S.current);
  if (!c) return;
  const input = $('#composer-input');
  let text = input.value.replace(/^\s*\n/, '').trimEnd();
  if (!text.trim()) return;
  const d = draftOf(c.cid);
  const mentions = [];
  const picked = [...d.mentions].sort((a, b) => b.label.length - a.label.length);
  for (const m of picked) {
    if (!text.includes(m.label)) continue;
    if (m.id === 'all') {
      if (!mentions.includes('all')) mentions.push('all');
      continue;
    }
    text = text.split(m.label).join(`@[user_id:${m.id}]`);
    if (!mentions.includes(m.id)) mentions.push(m.id);
  }
  if (new TextEncoder().encode(text).length > 16000) {
    toast('This message is too long.', true);
    return;
  }
  queueSend(c, 'text', text, {}, mentions);
  input.value = '';
  d.text = '';
  d.mentions = [];
  autosize();
  closePopovers();
  input.focus();
}

function insertAtCursor(text) {
  const input = $('#composer-input');
  const start = input.selectionStart ?? input.value.length;
  const end = input.selectionEnd ?? input.value.length;
  input.setRangeText(text, start, end, 'end');
  input.dispatchEvent(new Event('input', { bubbles: true }));
  input.focus();
}

function maybeSendTyping() {
  const c = S.convs.get(S.current);
  if (!c || c.type !== 'single') return;
  const now = Date.now();
  if (now - S.lastTypingSent < TYPING_SEND_EVERY) return;
  if (sock.send({ type: 'typing', conversation_id: c.cid })) S.lastTypingSent = now;
}

// ---------- emoji ----------

function buildEmojiPicker() {
  const pop = $('#emoji-pop');
  const grid = h('div', { class: 'emoji-grid', role: 'grid' });
  for (const [e, name] of EMOJI) {
    grid.append(h('button', { type: 'button', title: name, 'aria-label': name, 'data-emoji': e, onclick: () => insertAtCursor(e) }, e));
  }
  pop.replaceChildren(grid);
  grid.addEventListener('keydown', (ev) => {
    const buttons = $$('button', grid);
    const i = buttons.indexOf(document.activeElement);
    if (i < 0) return;
    const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: 8, ArrowUp: -8 }[ev.key];
    if (step) {
      ev.preventDefault();
      const next = buttons[Math.max(0, Math.min(buttons.length - 1, i + step))];
      next.focus();
    }
  });
}

function toggleEmoji(open) {
  const pop = $('#emoji-pop');
  const show = open ?? pop.hidden;
  closePopovers();
  pop.hidden = !show;
  $('#emoji-btn').setAttribute('aria-expanded', String(show));
  if (show) $('button', pop).focus();
}

// ---------- @ mentions ----------

const mention = { open: false, start: -1, options: [], index: 0 };

function mentionQuery() {
  const input = $('#composer-input');
  const pos = input.selectionStart;
  const before = input.value.slice(0, pos);
  const m = /(^|\s)@([^\s@]{0,32})$/.exec(before);
  if (!m) return null;
  return { start: pos - m[2].length - 1, query: m[2] };
}

async function updateMentionPicker() {
  const c = S.convs.get(S.current);
  if (!c || c.type !== 'group') return closeMention();
  const q = mentionQuery();
  if (!q) return closeMention();
  const members = await ensureMembers(c.group_id);
  const query = q.query.toLowerCase();
  const opts = members
    .filter((m) => m.user_id !== myId())
    .map((m) => ({ id: m.user_id, name: userName(m.user_id), username: (S.users.get(m.user_id) || {}).username || '' }))
    .filter((o) => !query || o.name.toLowerCase().includes(query) || o.username.toLowerCase().includes(query))
    .sort((a, b) => a.name.localeCompare(b.name))
    .slice(0, 50);
  if (!query || 'all'.startsWith(query) || 'everyone'.startsWith(query)) opts.push({ id: 'all', name: 'all', username: 'Everyone in the group' });
  mention.open = true;
  mention.start = q.start;
  mention.options = opts;
  mention.index = Math.min(mention.index, Math.max(0, opts.length - 1));
  renderMentionPicker();
}

function renderMentionPicker() {
  const pop = $('#mention-pop');
  $('#emoji-pop').hidden = true;
  pop.hidden = !mention.open;
  if (!mention.open) return;
  if (!mention.options.length) {
    pop.replaceChildren(h('div', { class: 'hint padded' }, 'No member matches.'));
    return;
  }
  pop.replaceChildren(...mention.options.map((o, i) => h('button', {
    type: 'button',
    class: 'mention-opt',
    role: 'option',
    'aria-selected': String(i === mention.index),
    'data-testid': 'mention-option',
    'data-user-id': o.id,
    onmousedown: (ev) => ev.preventDefault(),
    onclick: () => pickMention(i),
  },
  o.id === 'all' ? avatar({ id: 'all', name: '@', size: 'xs', group: true }) : userAvatar(o.id, 'xs'),
  h('span', {}, o.id === 'all' ? '@all' : o.name),
  h('small', {}, o.id === 'all' ? o.username : o.username ? `@${o.username}` : ''))));
  const sel = pop.children[mention.index];
  if (sel && sel.scrollIntoView) sel.scrollIntoView({ block: 'nearest' });
}

function pickMention(i) {
  const o = mention.options[i];
  if (!o) return;
  const input = $('#composer-input');
  const label = o.id === 'all' ? '@all' : `@${o.name}`;
  input.setRangeText(`${label} `, mention.start, input.selectionStart, 'end');
  const d = draftOf(S.current);
  if (!d.mentions.some((m) => m.id === o.id)) d.mentions.push({ id: o.id, label });
  closeMention();
  autosize();
  input.focus();
}

function closeMention() {
  mention.open = false;
  mention.index = 0;
  $('#mention-pop').hidden = true;
}

// ---------- uploads ----------

async function imageSize(file) {
  const url = URL.createObjectURL(file);
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    return { width: img.naturalWidth, height: img.naturalHeight };
  } catch {
    return { width: 0, height: 0 };
  } finally {
    URL.revokeObjectURL(url);
  }
}

async function upload(file) {
  const form = new FormData();
  form.append('file', file, file.name || 'upload');
  return api.request('POST', '/uploads', form);
}

async function sendFile(file, kind) {
  const c = S.convs.get(S.current);
  if (!c || !file) return;
  if (kind === 'image' && !file.type.startsWith('image/')) kind = 'file';
  const id = uuid();
  const previewUrl = kind === 'image' ? URL.createObjectURL(file) : null;
  const dims = kind === 'image' ? await imageSize(file) : null;
  const ext = (file.name.split('.').pop() || '').toLowerCase();
  const metadata = kind === 'image'
    ? { width: dims.width, height: dims.height, size: file.size, format: ext }
    : { filename: file.name, size: file.size, mime_type: file.type || 'application/octet-stream' };
  const u = { id, cid: c.cid, kind, previewUrl, metadata, created: Date.now() };
  S.uploads.push(u);
  S.stickToBottom = true;
  render();
  try {
    const res = await upload(file);
    metadata.size = res.size ?? metadata.size;
    if (kind === 'file') metadata.mime_type = res.mime_type || metadata.mime_type;
    queueSend(c, kind, res.url, metadata, []);
  } catch (e) {
    toastError(e, kind === 'image' ? 'Could not upload the photo' : 'Could not upload the file');
  } finally {
    S.uploads = S.uploads.filter((x) => x.id !== id);
    if (previewUrl) setTimeout(() => URL.revokeObjectURL(previewUrl), 5000);
    render();
  }
}

// ====================================================================
// dialogs
// ====================================================================

function openDialog(sel) {
  const dlg = $(sel);
  if (!dlg.open) dlg.showModal();
  return dlg;
}

function confirmDialog(title, text, okLabel = 'OK') {
  const dlg = $('#dlg-confirm');
  $('#dlg-confirm-title').textContent = title;
  $('#confirm-text').textContent = text;
  $('#confirm-ok').textContent = okLabel;
  dlg.returnValue = '';
  openDialog('#dlg-confirm');
  $('#confirm-cancel').focus();
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
  });
}

function openPreview(src, name) {
  if (!src) return;
  $('#preview-img').src = src;
  $('#preview-img').alt = name;
  $('#preview-open').href = src;
  $('#preview-open').setAttribute('download', name);
  openDialog('#dlg-preview');
}

async function addFriend(uid) {
  try {
    await api.post('/friends', { user_id: uid });
  } catch (e) {
    if (e.status !== 409) {
      toastError(e, 'Could not add the friend');
      return false;
    }
  }
  if (!S.friends.includes(uid)) S.friends.push(uid);
  toast(`${userName(uid)} is now in your friends`);
  loadFriends();
  render();
  return true;
}

// ---------- add friend / find group ----------

let addKind = 'users';
function openAdd(kind = 'users') {
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
  else {
    const add = h('button', {
      type: 'button', class: 'btn btn-primary btn-sm', 'data-testid': 'add-friend-button', onclick: async () => {
        add.disabled = true;
        if (await addFriend(u.user_id)) {
          add.replaceWith(h('span', { class: 'result-note', 'data-testid': 'friend-added' }, 'Added ✓'));
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

function openNewChat() {
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

// ---------- create group ----------

const groupDraft = { picked: new Set(), avatarUrl: null };

function openCreateGroup() {
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
async function openInvite(c) {
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

// ---------- profile ----------

function openProfile() {
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

// ---------- settings ----------

function openSettings() {
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

// ---------- toasts ----------

function toast(text, error = false) {
  const box = $('#toasts');
  const el = h('div', { class: `toast${error ? ' error' : ''}`, 'data-testid': 'toast' }, text);
  box.append(el);
  // A popover is in the top layer: shown again, it lands above any open dialog.
  if (box.showPopover) {
    if (box.matches(':popover-open')) box.hidePopover();
    box.showPopover();
  }
  setTimeout(() => {
    el.remove();
    if (!box.children.length && box.hidePopover && box.matches(':popover-open')) box.hidePopover();
  }, error ? 5000 : 2600);
}

function toastError(e, what) {
  const msg = e instanceof ApiError && e.status === 413 ? 'The file is too large.' : e.message;
  toast(`${what}: ${msg}`, true);
}

// ====================================================================
// popovers
// ====================================================================

function closePopovers() {
  $('#emoji-pop').hidden = true;
  $('#emoji-btn').setAttribute('aria-expanded', 'false');
  closeMention();
  closePlusMenu();
}

function closePlusMenu() {
  $('#plus-menu').hidden = true;
  $('#plus-btn').setAttribute('aria-expanded', 'false');
}

function togglePlusMenu() {
  const menu = $('#plus-menu');
  const show = menu.hidden;
  closePopovers();
  menu.hidden = !show;
  $('#plus-btn').setAttribute('aria-expanded', String(show));
  if (show) $('button', menu).focus();
}

// ====================================================================
// wiring
// ====================================================================

function wire() {
  // auth
  $('#auth-form').addEventListener('submit', onAuthSubmit);
  $('#tab-login').addEventListener('click', () => setAuthMode('login'));
  $('#tab-register').addEventListener('click', () => setAuthMode('register'));
  $('#auth-switch').addEventListener('click', () => {
    setAuthMode($('#auth-form').dataset.mode === 'login' ? 'register' : 'login');
    $('#auth-username').focus();
  });
  for (const input of $$('#auth-form input')) {
    input.addEventListener('input', () => {
      input.removeAttribute('aria-invalid');
      const err = $(`#err-${input.name}`);
      if (err) err.textContent = '';
    });
  }

  // rail
  $('#nav-profile').addEventListener('click', openProfile);
  $('#nav-chats').addEventListener('click', () => setMode('chats'));
  $('#nav-contacts').addEventListener('click', () => { setMode('contacts'); loadFriends(); loadGroups(); });
  $('#nav-settings').addEventListener('click', openSettings);

  // list
  $('#list-search').addEventListener('input', (ev) => { S.filter = ev.target.value; render(); });
  $('#plus-btn').addEventListener('click', (ev) => { ev.stopPropagation(); togglePlusMenu(); });
  $('#plus-menu').addEventListener('click', (ev) => {
    const b = ev.target.closest('[data-action]');
    if (!b) return;
    closePlusMenu();
    if (b.dataset.action === 'new-chat') openNewChat();
    else if (b.dataset.action === 'create-group') openCreateGroup();
    else if (b.dataset.action === 'add-friend') openAdd('users');
  });
  $('#plus-menu').addEventListener('keydown', (ev) => {
    const items = $$('button', $('#plus-menu'));
    const i = items.indexOf(document.activeElement);
    if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      ev.preventDefault();
      items[(i + (ev.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length].focus();
    } else if (ev.key === 'Tab') closePlusMenu();
  });

  // chat
  $('#back-btn').addEventListener('click', backToList);
  $('#info-btn').addEventListener('click', () => toggleInfo());
  $('#jump-btn').addEventListener('click', () => {
    const box = $('#messages');
    box.scrollTop = box.scrollHeight;
  });
  $('#messages').addEventListener('scroll', () => {
    const c = S.convs.get(S.current);
    if (!c) return;
    if ($('#messages').scrollTop < 150) loadOlder(c);
    updateJump(c);
  }, { passive: true });

  // composer
  const input = $('#composer-input');
  input.addEventListener('keydown', (ev) => {
    if (mention.open && mention.options.length) {
      if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
        ev.preventDefault();
        const n = mention.options.length;
        mention.index = (mention.index + (ev.key === 'ArrowDown' ? 1 : n - 1)) % n;
        renderMentionPicker();
        return;
      }
      if (ev.key === 'Enter' || ev.key === 'Tab') {
        ev.preventDefault();
        pickMention(mention.index);
        return;
      }
    }
    if (ev.key === 'Escape' && (mention.open || !$('#emoji-pop').hidden)) {
      ev.preventDefault();
      closePopovers();
      return;
    }
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
      ev.preventDefault();
      sendText();
    }
  });
  input.addEventListener('input', () => {
    autosize();
    if (input.value) maybeSendTyping();
    updateMentionPicker();
  });
  input.addEventListener('click', () => updateMentionPicker());
  input.addEventListener('blur', () => setTimeout(() => {
    if (!$('#mention-pop').contains(document.activeElement)) closeMention();
  }, 150));
  $('#send-btn').addEventListener('click', sendText);
  $('#emoji-btn').addEventListener('click', (ev) => { ev.stopPropagation(); toggleEmoji(); });
  $('#emoji-pop').addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') {
      ev.preventDefault();
      toggleEmoji(false);
      $('#emoji-btn').focus();
    }
  });
  $('#at-btn').addEventListener('click', () => {
    const inp = $('#composer-input');
    const pos = inp.selectionStart ?? inp.value.length;
    const needsSpace = pos > 0 && !/\s/.test(inp.value[pos - 1]);
    inp.focus();
    inp.setSelectionRange(pos, pos);
    insertAtCursor(needsSpace ? ' @' : '@');
  });
  $('#image-btn').addEventListener('click', () => $('#image-input').click());
  $('#file-btn').addEventListener('click', () => $('#file-input').click());
  $('#image-input').addEventListener('change', (ev) => {
    const f = ev.target.files[0];
    ev.target.value = '';
    sendFile(f, 'image');
  });
  $('#file-input').addEventListener('change', (ev) => {
    const f = ev.target.files[0];
    ev.target.value = '';
    sendFile(f, 'file');
  });
  // Paste or drop an image/file into the chat.
  input.addEventListener('paste', (ev) => {
    const f = ev.clipboardData && ev.clipboardData.files && ev.clipboardData.files[0];
    if (f) {
      ev.preventDefault();
      sendFile(f, f.type.startsWith('image/') ? 'image' : 'file');
    }
  });
  $('#chat-pane').addEventListener('dragover', (ev) => { if (ev.dataTransfer.types.includes('Files')) ev.preventDefault(); });
  $('#chat-pane').addEventListener('drop', (ev) => {
    const f = ev.dataTransfer.files && ev.dataTransfer.files[0];
    if (!f) return;
    ev.preventDefault();
    sendFile(f, f.type.startsWith('image/') ? 'image' : 'file');
  });

  // dialogs: [data-close] buttons, a click on the backdrop, logout buttons
  for (const dlg of $$('dialog')) {
    dlg.addEventListener('click', (ev) => {
      if (ev.target.closest('[data-close]')) dlg.close();
      else if (ev.target === dlg && dlg.id !== 'dlg-kicked') {
        const r = dlg.getBoundingClientRect();
        const inside = ev.clientX >= r.left && ev.clientX <= r.right && ev.clientY >= r.top && ev.clientY <= r.bottom;
        if (!inside) dlg.close();
      }
    });
  }
  $('#dlg-kicked').addEventListener('cancel', (ev) => ev.preventDefault());
  for (const b of $$('[data-action="logout"]')) b.addEventListener('click', logout);
  $('#kicked-reconnect').addEventListener('click', () => {
    $('#dlg-kicked').close();
    sock.start();
  });
  $('#add-form').addEventListener('submit', (ev) => { ev.preventDefault(); runAddSearch(); });
  for (const b of $$('#dlg-add [data-kind]')) b.addEventListener('click', () => { openAdd(b.dataset.kind); });
  $('#new-chat-query').addEventListener('input', searchNewChat);
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
  $('#profile-form').addEventListener('submit', saveProfile);
  $('#avatar-btn').addEventListener('click', () => $('#avatar-input').click());
  $('#avatar-input').addEventListener('change', (ev) => {
    const f = ev.target.files[0];
    ev.target.value = '';
    changeAvatar(f);
  });
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
  $('#dlg-preview').addEventListener('close', () => { $('#preview-img').removeAttribute('src'); });

  // global
  document.addEventListener('click', (ev) => {
    if (!ev.target.closest('#plus-menu, #plus-btn')) closePlusMenu();
    if (!ev.target.closest('#emoji-pop, #emoji-btn')) {
      $('#emoji-pop').hidden = true;
      $('#emoji-btn').setAttribute('aria-expanded', 'false');
    }
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Escape' || ev.defaultPrevented || document.querySelector('dialog[open]')) return;
    if (!$('#plus-menu').hidden) {
      closePlusMenu();
      $('#plus-btn').focus();
    } else if (S.infoOpen) {
      toggleInfo(false);
    } else if (isPhone() && S.view === 'chat' && ev.target === document.body) {
      backToList();
    }
  });
  for (const type of ['pointerdown', 'keydown']) document.addEventListener(type, unlockAudio, { once: true, capture: true });
  document.addEventListener('visibilitychange', () => {
    const c = S.convs.get(S.current);
    if (c && document.visibilityState === 'visible') markReadSoon(c);
    if (document.visibilityState === 'visible' && sock.state === 'offline') sock.reconnectNow();
  });
  window.addEventListener('online', () => sock.reconnectNow());
  window.addEventListener('focus', () => {
    const c = S.convs.get(S.current);
    if (c) markReadSoon(c);
  });
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', applyTheme);
  matchMedia('(max-width: 720px)').addEventListener('change', () => render());
  window.addEventListener('storage', (ev) => {
    if (ev.key === SESSION_KEY && !ev.newValue && S.me) location.reload();
  });
  // The server sends no presence frames yet: while a 1:1 chat is on screen,
  // ask for the peer's profile (with `online`) every 30 s.
  setInterval(() => {
    const c = S.convs.get(S.current);
    if (c && c.type === 'single' && sock.isOpen && isVisible(c)) ensureUser(c.peer_user_id, true);
  }, 30000);
  // typing indicators expire on their own
  setInterval(() => {
    const now = Date.now();
    let changed = false;
    for (const [cid, t] of S.typing) if (t.until <= now) { S.typing.delete(cid); changed = true; }
    if (changed) render();
  }, 1000);
}

// ====================================================================
// start
// ====================================================================

function start() {
  applyTheme();
  wire();
  buildEmojiPicker();
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

// Exposed for the browser tests and for poking around in the console.
window.gochat = { state: S, socket: sock };

start();
