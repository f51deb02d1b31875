// Layer 3 (views): the chat pane: its header (name, members or online state,
// typing), the messages in seq order with the pending sends and uploads after
// them, day separators, the history edge, the scroll position (stay at the
// bottom while there, keep the reader's place when older rows arrive) and the
// jump button. The messages themselves are history.js's.

import { $, dayKey, fmtDay, fmtListTime, h, reconcile } from './util.js';
import { convName, isSystem, myId, onlineOf, S, userName } from './store.js';
import { isChange, loadOlder } from './history.js';
import { convAvatar } from './avatars.js';
import { toggleInfo } from './info-panel.js';
import { mentionNames, messageRow, plainText } from './messages.js';

let renderedCid = null;
const msgCache = new Map();

export function renderChat() {
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
      // Presence reaches people who share a conversation (unless blocked);
      // the profile says when the peer was last seen.
      sub.textContent = u.last_seen ? `Last seen ${fmtListTime(u.last_seen)}` : 'Offline';
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
  for (const s of seqs) {
    const m = c.msgs.get(s);
    // Edits and recalls show on the message they change; deleted-for-me ones not at all.
    if (!m.deleted && !isChange(m)) rows.push({ m, status: 'sent' });
  }
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
      readByPeer, showRead, mentionNames(m.content), m.content, m.edited_at, m.recalled]);
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

/** Scrolled near the top: the page before, keeping what the reader looks at in place. */
async function showOlder(c) {
  const loading = loadOlder(c);
  if (!loading) return;
  renderHistoryEdge(c);
  const added = await loading;
  if (added && S.current === c.cid) {
    const box = $('#messages');
    renderMessages(c, { keepBottomOffset: box.scrollHeight - box.scrollTop });
  }
  renderHistoryEdge(c);
}

function updateJump(c) {
  const box = $('#messages');
  const away = box.scrollHeight - box.scrollTop - box.clientHeight > 300;
  $('#jump-btn').hidden = !away;
  $('#jump-count').textContent = away && c.unread ? String(c.unread) : '';
}

export function wireChat() {
  $('#info-btn').addEventListener('click', () => toggleInfo());
  $('#jump-btn').addEventListener('click', () => {
    const box = $('#messages');
    box.scrollTop = box.scrollHeight;
  });
  $('#messages').addEventListener('scroll', () => {
    const c = S.convs.get(S.current);
    if (!c) return;
    if ($('#messages').scrollTop < 150) showOlder(c);
    updateJump(c);
  }, { passive: true });
}
