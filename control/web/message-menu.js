// Layer 3 (views): the menu on a stored message (edit, recall, read by,
// delete for me), the edit dialog and the read-by list. What each does is history.js's. The menu offers
// what the server would allow (PROTOCOL v1.1 §6.1: edit my own text for a
// day, recall my own for two minutes or a lower role's as a group's owner or
// admin, delete for me always); when it is stale (a window passed while the
// chat was open) the server's refusal shows as a toast.

import { $, h } from './util.js';
import { toastError } from './toasts.js';
import { myId, S, userName } from './store.js';
import { deleteForMe, editMessage, readReceipts, recallMessage } from './history.js';
import { confirmDialog, openDialog } from './dialogs.js';

const EDIT_WINDOW_MS = 86_400_000;
const RECALL_WINDOW_MS = 120_000;
const RANK = { owner: 3, admin: 2, member: 1 };

/** A member's rank in the group of `c` (0: not a member, or not known). */
function rankIn(c, uid) {
  const member = (S.members.get(c.group_id) || []).find((m) => m.user_id === uid);
  return member ? RANK[member.role] || 1 : 0;
}

function offered(c, m) {
  const me = myId();
  const mine = m.from_user_id === me;
  const age = Date.now() - m.timestamp;
  const out = [];
  if (mine && m.message_type === 'text' && age < EDIT_WINDOW_MS) out.push(['Edit', 'edit', () => edit(c, m)]);
  const rank = c.type === 'group' ? rankIn(c, me) : 0;
  const manager = rank >= RANK.admin && (mine || rank > rankIn(c, m.from_user_id));
  if ((mine && age < RECALL_WINDOW_MS) || manager) out.push(['Recall', 'recall', () => recall(c, m)]);
  if (mine && c.type === 'group') out.push(['Read by', 'reads', () => showReads(c, m)]);
  out.push(['Delete for me', 'delete', () => remove(c, m)]);
  return out;
}

function closeMenus() {
  for (const menu of document.querySelectorAll('.msg-menu')) menu.hidden = true;
}

/** The "⋯" button of a stored message and its menu. */
export function messageMenu(c, m) {
  const menu = h('div', { class: 'menu msg-menu', role: 'menu', hidden: true, 'data-testid': 'message-menu' },
    offered(c, m).map(([label, id, run]) => h('button', {
      type: 'button',
      role: 'menuitem',
      'data-testid': `message-${id}`,
      onclick: () => { closeMenus(); run(); },
    }, label)));
  const button = h('button', {
    type: 'button',
    class: 'msg-more',
    'aria-label': 'Message actions',
    'aria-haspopup': 'menu',
    'data-testid': 'message-actions',
    onclick: (ev) => {
      ev.stopPropagation();
      const open = menu.hidden;
      closeMenus();
      menu.hidden = !open;
    },
  }, '⋯');
  return h('div', { class: 'msg-menu-wrap' }, button, menu);
}

let editing = null;

function edit(c, m) {
  editing = { c, m };
  $('#edit-text').value = m.content;
  openDialog('#dlg-edit');
  $('#edit-text').focus();
}

async function showReads(c, m) {
  let reads;
  try {
    reads = await readReceipts(c, m);
  } catch (e) {
    toastError(e, 'Could not load who read it');
    return;
  }
  const n = reads.read_count;
  $('#reads-count').textContent = n === 0 ? 'Nobody has read it yet.' : `Read by ${n}.`;
  const names = (reads.read_by || []).map((id) => h('li', { 'data-testid': 'reader', 'data-user-id': id }, userName(id)));
  $('#reads-list').replaceChildren(...names);
  $('#reads-note').hidden = !!reads.read_by || n === 0;
  openDialog('#dlg-reads');
}

async function recall(c, m) {
  if (!(await confirmDialog('Recall message', 'Remove this message for everyone in the chat?', 'Recall'))) return;
  recallMessage(c, m).catch((e) => toastError(e, 'Could not recall the message'));
}

async function remove(c, m) {
  if (!(await confirmDialog('Delete for me', 'Remove this message from your copy of the chat? Others keep it.', 'Delete'))) return;
  deleteForMe(c, m).catch((e) => toastError(e, 'Could not delete the message'));
}

export function wireMessageMenu() {
  document.addEventListener('click', (ev) => {
    if (!ev.target.closest('.msg-menu-wrap')) closeMenus();
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') closeMenus();
  });
  $('#dlg-edit').addEventListener('close', () => {
    const text = $('#edit-text').value.trim();
    const target = editing;
    editing = null;
    if ($('#dlg-edit').returnValue !== 'ok' || !target || !text || text === target.m.content) return;
    editMessage(target.c, target.m, text).catch((e) => toastError(e, 'Could not edit the message'));
  });
}
