// Layer 3 (views): the left column: the connection banner, the conversation
// list (newest activity first, typing and pending sends in the preview) and
// the contacts list (friends by letter, then groups), both filtered by the
// search box. Rows are reconciled by key and signature, so an update rebuilds
// only the rows that changed.

import { $, fmtListTime, h, icon, reconcile } from './util.js';
import { convForGroup, convForUser, convName, myId, onlineOf, S, userName } from './store.js';
import { openConv } from './navigation.js';
import { avatar, convAvatar } from './avatars.js';
import { previewText } from './messages.js';
import { openNewChat } from './people.js';
import { requestItems } from './requests.js';
import { messageHitItems } from './search.js';

export function renderBanner() {
  const banner = $('#conn-banner');
  const down = S.conn !== 'open';
  banner.hidden = !(down && S.showBanner) && S.conn !== 'kicked';
  banner.dataset.state = S.conn;
  $('#conn-text').textContent = S.conn === 'kicked'
    ? 'Signed out on this device'
    : (S.everConnected ? 'Offline — reconnecting…' : 'Connecting…');
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
export function renderConvList() {
  const list = $('#conv-list');
  const listed = [...S.convs.values()]
    .filter((c) => lastActivity(c) > 0 || c.last_seq_id > 0)
    .filter((c) => matchesFilter(convName(c), c.type === 'single' && (S.users.get(c.peer_user_id) || {}).username));
  // Pinned first, each part by last activity; archived ones (unless
  // searching) only behind the Archived toggle at the end.
  const archivedCount = listed.filter((c) => c.archived).length;
  const convs = listed
    .filter((c) => S.filter || !c.archived || S.showArchived)
    .sort((a, b) => (Number(!!b.pinned) - Number(!!a.pinned)) || (lastActivity(b) - lastActivity(a)));
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
      !!isTyping, u.avatar_url, onlineOf(c.peer_user_id), g.avatar_url, c.muted, c.pinned, c.archived]);
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
        'data-pinned': String(!!c.pinned),
        'data-muted': String(!!c.muted),
        'data-archived': String(!!c.archived),
        onclick: () => openConv(c.cid),
      },
      convAvatar(c, 'lg'),
      h('span', { class: 'item-main' },
        h('span', { class: 'item-top' },
          h('span', { class: 'item-name', 'data-testid': 'conv-name' }, name),
          c.muted ? h('span', { class: 'item-flag', title: 'Muted', 'aria-label': 'Muted', 'data-testid': 'conv-muted' }, '🔕') : null,
          c.pinned ? h('span', { class: 'item-flag', title: 'Pinned', 'aria-label': 'Pinned', 'data-testid': 'conv-pinned' }, '📌') : null,
          h('span', { class: 'item-time' }, time)),
        h('span', { class: 'item-bottom' },
          h('span', { class: 'item-preview', 'data-testid': 'conv-preview' },
            isTyping ? h('span', { class: 'typing' }, preview) : preview),
          c.unread_mentions > 0 ? h('span', { class: 'mention-mark', title: 'You were mentioned', 'aria-label': 'You were mentioned', 'data-testid': 'mention-marker' }, '@') : null,
          c.unread > 0 ? h('span', { class: 'badge', 'data-testid': 'unread-badge', 'aria-label': `${c.unread} unread` }, c.unread > 99 ? '99+' : String(c.unread)) : null))),
    };
  });
  if (archivedCount && !S.filter) {
    items.push({
      key: '__archived',
      sig: `${archivedCount}:${S.showArchived}`,
      make: () => h('button', {
        type: 'button', class: 'list-toggle', 'data-testid': 'archived-toggle', 'aria-expanded': String(!!S.showArchived),
        onclick: () => { S.showArchived = !S.showArchived; renderConvList(); },
      }, S.showArchived ? `Hide archived · ${archivedCount}` : `Archived · ${archivedCount}`),
    });
  }
  const hits = S.filter ? messageHitItems() : [];
  if (!items.length && !hits.length) {
    items.push({
      key: '__empty',
      sig: S.filter,
      make: () => h('div', { class: 'list-empty' },
        S.filter ? `No conversation matches “${S.filter}”.` : h('span', {}, 'No conversations yet.', h('br'),
          h('button', { type: 'button', class: 'btn btn-primary btn-sm', onclick: () => openNewChat() }, icon('edit'), 'Start a chat'))),
    });
  }
  items.push(...hits);
  reconcile(list, items, convListCache);
}

const contactCache = new Map();
export function renderContacts() {
  const list = $('#contact-list');
  const items = S.filter ? [] : requestItems();
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
