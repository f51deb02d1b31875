// Layer 3 (views): friend requests (docs/protocol.md, friends with consent):
// the Requests section at the top of the contacts list (accept or reject what
// others asked, and what the user asked, still waiting), and the notices when
// a request arrives or a friendship forms.

import { toast, toastError } from './toasts.js';
import { h } from './util.js';
import { changed, S, userName } from './store.js';
import { loadFriends, loadRequests } from './loaders.js';
import { api } from './transport.js';
import { userAvatar } from './avatars.js';

async function answer(r, accept) {
  try {
    await api.post(`/friend-requests/${r.request_id}/${accept ? 'accept' : 'reject'}`);
    if (!accept) toast(`Request from ${userName(r.from_user_id)} declined`);
  } catch (e) {
    toastError(e, accept ? 'Could not accept the request' : 'Could not decline the request');
  }
  // Gone either way: answered now, or no longer answerable.
  S.requests.incoming = S.requests.incoming.filter((x) => x.request_id !== r.request_id);
  changed();
  if (accept) loadFriends();
  loadRequests();
}

function incomingItem(r) {
  const who = userName(r.from_user_id);
  return h('div', { class: 'item request', 'data-testid': 'request-item', 'data-request-id': r.request_id, 'data-name': who },
    userAvatar(r.from_user_id),
    h('span', { class: 'item-main' },
      h('span', { class: 'item-name' }, who),
      h('span', { class: 'item-sub' }, r.message || 'wants to be your friend')),
    h('span', { class: 'request-actions' },
      h('button', { type: 'button', class: 'btn btn-sm btn-primary', 'data-testid': 'request-accept', onclick: () => answer(r, true) }, 'Accept'),
      h('button', { type: 'button', class: 'btn btn-sm', 'data-testid': 'request-reject', onclick: () => answer(r, false) }, 'Decline')));
}

function outgoingItem(r) {
  const whom = userName(r.to_user_id);
  return h('div', { class: 'item request', 'data-testid': 'request-sent', 'data-name': whom },
    userAvatar(r.to_user_id),
    h('span', { class: 'item-main' },
      h('span', { class: 'item-name' }, whom),
      h('span', { class: 'item-sub' }, 'Request sent, waiting for an answer')));
}

/** The Requests section's entries for the contacts list (nothing when none waits). */
export function requestItems() {
  const { incoming, outgoing } = S.requests;
  if (!incoming.length && !outgoing.length) return [];
  const items = [{ key: 'h:requests', sig: String(incoming.length), make: () => h('div', { class: 'list-section' }, `Requests · ${incoming.length}`) }];
  for (const r of incoming) {
    items.push({ key: `r:${r.request_id}`, sig: JSON.stringify([userName(r.from_user_id), r.message]), make: () => incomingItem(r) });
  }
  for (const r of outgoing) {
    items.push({ key: `s:${r.request_id}`, sig: userName(r.to_user_id), make: () => outgoingItem(r) });
  }
  return items;
}

/** A `friend_request` frame arrived. */
export function noticeRequest(uid) {
  toast(`${userName(uid)} wants to be your friend`);
}

/** A `friend_added` frame arrived. */
export function noticeFriend(uid) {
  toast(`${userName(uid)} is now your friend`);
}
