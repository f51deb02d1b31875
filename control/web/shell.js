// The app's frame: the render loop, the rail, which conversation is open and
// the phone's list/chat views, the + menu and popovers, and the window-wide
// listeners (Escape, visibility, focus, coming back online, the layout width).
// render() is batched: any number of calls in one task redraw once.

import { $, $$ } from './util.js';
import { avatar } from './avatars.js';
import { renderChat } from './chat.js';
import { closeEmoji, restoreDraft, saveDraft } from './composer.js';
import { loadLatest, markReadSoon } from './conversations.js';
import { openCreateGroup } from './group-dialogs.js';
import { renderInfo, toggleInfo } from './info-panel.js';
import { closeMention } from './mentions.js';
import { openAdd, openNewChat } from './people.js';
import { openProfile } from './profile.js';
import { sock } from './session.js';
import { openSettings } from './settings.js';
import { renderBanner, renderContacts, renderConvList } from './sidebar.js';
import { ensureGroup, ensureMembers, ensureUser, isPhone, loadFriends, loadGroups, S } from './store.js';

let renderQueued = false;
export function render() {
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

export function renderMe() {
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

export function openConv(cid) {
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

export function closePopovers() {
  closeEmoji();
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

export function wireShell() {
  $('#nav-profile').addEventListener('click', openProfile);
  $('#nav-chats').addEventListener('click', () => setMode('chats'));
  $('#nav-contacts').addEventListener('click', () => { setMode('contacts'); loadFriends(); loadGroups(); });
  $('#nav-settings').addEventListener('click', openSettings);

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

  $('#back-btn').addEventListener('click', backToList);
  document.addEventListener('click', (ev) => {
    if (!ev.target.closest('#plus-menu, #plus-btn')) closePlusMenu();
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
  matchMedia('(max-width: 720px)').addEventListener('change', () => render());
}
