// Layer 3 (views): the @ picker of a group chat: typing "@" and a few letters
// lists the matching members (and @all); a pick puts "@Name" in the text and
// remembers it in the draft (the store's), and composer.js turns it into a
// mention token on send.

import { $, fitHeight, h } from './util.js';
import { draftOf, myId, S, userName } from './store.js';
import { ensureMembers } from './loaders.js';
import { avatar, userAvatar } from './avatars.js';

const mention = { open: false, start: -1, options: [], index: 0 };

function mentionQuery() {
  const input = $('#composer-input');
  const pos = input.selectionStart;
  const before = input.value.slice(0, pos);
  const m = /(^|\s)@([^\s@]{0,32})$/.exec(before);
  if (!m) return null;
  return { start: pos - m[2].length - 1, query: m[2] };
}

export async function updateMentionPicker() {
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
  fitHeight(input);
  input.focus();
}

export function closeMention() {
  mention.open = false;
  mention.index = 0;
  $('#mention-pop').hidden = true;
}

export const isMentionPickerOpen = () => mention.open;

/** Arrows move through the open picker, Enter and Tab pick: true when the key was the picker's. */
export function mentionPickerKey(ev) {
  if (!mention.open || !mention.options.length) return false;
  if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
    ev.preventDefault();
    const n = mention.options.length;
    mention.index = (mention.index + (ev.key === 'ArrowDown' ? 1 : n - 1)) % n;
    renderMentionPicker();
    return true;
  }
  if (ev.key === 'Enter' || ev.key === 'Tab') {
    ev.preventDefault();
    pickMention(mention.index);
    return true;
  }
  return false;
}
