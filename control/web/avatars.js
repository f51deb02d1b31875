// Layer 3 (views): avatars, the picture when there is one, else initials (or a
// group icon) on a colour picked from the id, so a person keeps one colour
// everywhere. The lowest of the views: the others draw people with it.

import { h, icon, safeUrl } from './util.js';
import { convName, onlineOf, S, userName } from './store.js';

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

export function avatar({ id, name, url, group = false, size = '', online = false }) {
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

export function userAvatar(uid, size = '') {
  const u = S.users.get(uid) || {};
  return avatar({ id: uid, name: userName(uid), url: u.avatar_url, size });
}

export function convAvatar(c, size = '') {
  if (c.type === 'group') {
    const g = S.groups.get(c.group_id) || {};
    return avatar({ id: c.cid, name: convName(c), url: g.avatar_url, group: true, size });
  }
  const u = S.users.get(c.peer_user_id) || {};
  return avatar({ id: c.peer_user_id, name: convName(c), url: u.avatar_url, size, online: onlineOf(c.peer_user_id) === true });
}
