// Layer 4 (shell): the app's frame. The render loop (batched: any number of
// `change` publishes in one task redraw once), the two screens, the rail, the
// phone's list/chat views, the + menu, the kicked dialog, and the window-wide
// listeners (Escape, visibility, focus, coming back online, the layout width,
// another tab signing out). It may import every layer below; nothing imports it.

import { $, $$, isPhone, onLayoutChange } from './util.js';
import { S, setChatPaneProbe } from './store.js';
import { markReadSoon } from './history.js';
import { loadFriends, loadGroups } from './loaders.js';
import { logout, SESSION_KEY } from './session.js';
import { sock } from './transport.js';
import { renderChat } from './chat.js';
import { saveDraft } from './composer.js';
import { addPopover, closePopovers, openDialog } from './dialogs.js';
import { openCreateGroup } from './group-dialogs.js';
import { renderInfo, toggleInfo } from './info-panel.js';
import { openAdd, openNewChat } from './people.js';
import { openProfile } from './profile.js';
import { openSettings } from './settings.js';
import { searchMessagesSoon } from './search.js';
import { renderBanner, renderContacts, renderConvList } from './sidebar.js';

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

export function showMainScreen() {
  $('#auth-screen').hidden = true;
  $('#main-screen').hidden = false;
}

export function showKicked(reason) {
  $('#kicked-text').textContent = `The server ended this session: ${reason || 'signed in elsewhere'}.`;
  openDialog('#dlg-kicked');
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

function backToList() {
  saveDraft(S.current);
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
  setChatPaneProbe(() => document.visibilityState === 'visible'
    && !$('#main-screen').hidden && (!isPhone() || S.view === 'chat'));
  addPopover(closePlusMenu);
  $('#nav-profile').addEventListener('click', openProfile);
  $('#nav-chats').addEventListener('click', () => setMode('chats'));
  $('#nav-contacts').addEventListener('click', () => { setMode('contacts'); loadFriends(); loadGroups(); });
  $('#nav-settings').addEventListener('click', openSettings);
  for (const b of $$('[data-action="logout"]')) b.addEventListener('click', logout);

  $('#list-search').addEventListener('input', (ev) => {
    S.filter = ev.target.value;
    if (S.mode === 'chats') searchMessagesSoon();
    render();
  });
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
  $('#dlg-kicked').addEventListener('cancel', (ev) => ev.preventDefault());
  $('#kicked-reconnect').addEventListener('click', () => {
    $('#dlg-kicked').close();
    sock.start();
  });
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
  window.addEventListener('storage', (ev) => {
    if (ev.key === SESSION_KEY && !ev.newValue && S.me) location.reload();
  });
  onLayoutChange(() => render());
}
