// Layer 3 (views): message search (docs/protocol.md, GET /search/messages):
// typing in the chat list's search box also searches what was said, and the
// messages found are listed under the matching conversations, newest first;
// a click opens the conversation. Only the server decides what the user may
// read: the list shows what it answered for the latest query.

import { debounce, fmtListTime, h } from './util.js';
import { changed, convName, convOfMessage, S, userName } from './store.js';
import { openConv } from './navigation.js';
import { api } from './transport.js';
import { convAvatar } from './avatars.js';

/** Shorter queries match too much to be useful as you type. */
const MIN_CHARS = 2;

async function runSearch() {
  const q = S.filter.trim();
  if (q.length < MIN_CHARS) {
    S.messageSearch = { q: '', hits: [] };
    changed();
    return;
  }
  try {
    const res = await api.get(`/search/messages?q=${encodeURIComponent(q)}&limit=30`);
    // A slower answer to an older query must not replace a newer one.
    if (S.filter.trim() !== q) return;
    S.messageSearch = { q, hits: res.messages || [] };
  } catch {
    S.messageSearch = { q, hits: [] };
  }
  changed();
}

/** Called as the search box changes. */
export const searchMessagesSoon = debounce(runSearch, 250);

/** The "Messages" section of the chat list while a search is typed. */
export function messageHitItems() {
  const { q, hits } = S.messageSearch;
  if (!q || q !== S.filter.trim()) return [];
  const items = [{ key: 'h:hits', sig: `${q}:${hits.length}`, make: () => h('div', { class: 'list-section', 'data-testid': 'message-hits' }, `Messages · ${hits.length}`) }];
  for (const m of hits) {
    const c = convOfMessage(m);
    const who = userName(m.from_user_id);
    items.push({
      key: `m:${m.message_id}`,
      sig: JSON.stringify([convName(c), who, m.content]),
      make: () => h('button', {
        type: 'button', class: 'item', 'data-testid': 'message-hit', 'data-cid': c.cid, 'data-message-id': m.message_id,
        onclick: () => openConv(c.cid),
      },
      convAvatar(c, 'lg'),
      h('span', { class: 'item-main' },
        h('span', { class: 'item-top' },
          h('span', { class: 'item-name' }, convName(c)),
          h('span', { class: 'item-time' }, fmtListTime(m.timestamp))),
        h('span', { class: 'item-bottom' },
          h('span', { class: 'item-preview' }, c.type === 'group' ? `${who}: ${m.content}` : m.content)))),
    });
  }
  if (!hits.length) items.push({ key: 'e:hits', sig: q, make: () => h('div', { class: 'list-empty' }, `No message says “${q}”.`) });
  return items;
}
