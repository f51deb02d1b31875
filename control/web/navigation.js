// Layer 2 (services): which conversation is open. Opening one makes it
// current, refreshes who is in it and loads its newest page; what the views do
// about a switch (the composer's draft, the details panel, open popovers,
// focus) they do on `conv-opened`, wired in app.js.

import { loadLatest, markReadSoon } from './history.js';
import { ensureGroup, ensureMembers, ensureUser } from './loaders.js';
import { changed, publish, S } from './store.js';

export function openConv(cid) {
  const c = S.convs.get(cid);
  if (!c) return;
  const previous = S.current;
  S.current = cid;
  S.view = 'chat';
  S.mode = 'chats';
  if (previous !== cid) S.infoOpen = false;
  publish('conv-opened', previous);
  if (c.type === 'single') ensureUser(c.peer_user_id, true);
  else {
    ensureGroup(c.group_id, true);
    ensureMembers(c.group_id);
  }
  changed();
  loadLatest(c).then(() => markReadSoon(c));
  markReadSoon(c);
}
