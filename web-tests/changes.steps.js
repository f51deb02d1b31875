// Act 2b, changing what was said: Alice edits and recalls her messages to
// Carol through the message menu; Carol sees both in place, then deletes a
// message from her own copy, which a reload keeps deleted for her only.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { send, shot, tid, waitConnected } from './helpers.js';
import { rest, users } from './world.js';

/** Opens the chat with `name` from the contacts. */
async function openChat(page, name) {
  await tid(page, 'nav-contacts').click();
  await page.locator(`[data-testid="contact-item"][data-name="${name}"]`).click();
  await tid(page, 'chat-name').getByText(name).waitFor();
}

/** Opens the menu of the message showing `text` and picks `action`. */
async function act(page, text, action) {
  const row = page.locator('[data-testid="message"]', { hasText: text });
  await row.hover();
  await row.getByTestId('message-actions').click();
  await row.getByTestId(`message-${action}`).click();
}

test('message menu: edit, recall, delete for me', async () => {
  const { alice, carol } = users;
  await openChat(alice.page, 'Carol');
  await send(alice.page, 'Lunch at noon?');
  await send(alice.page, 'See you tmrw');
  await alice.page.waitForFunction(() => document.querySelectorAll('[data-testid="message"][data-status="sent"]').length === 2);
  await openChat(carol.page, 'Alice');
  await carol.page.locator('[data-testid="message-text"]', { hasText: 'See you tmrw' }).waitFor();
  // Carol's read cursor redraws Alice's rows ("Read"): open menus after it.
  await tid(alice.page, 'read-mark').waitFor();

  // An edit, in place for both, marked "edited".
  const row = alice.page.locator('[data-testid="message"]', { hasText: 'See you tmrw' });
  await row.hover();
  await row.getByTestId('message-actions').click();
  await row.getByTestId('message-menu').waitFor();
  await shot(alice.page, '14-message-menu');
  await row.getByTestId('message-edit').click();
  await tid(alice.page, 'edit-text').fill('See you tomorrow');
  await tid(alice.page, 'edit-save').click();
  const edited = carol.page.locator('[data-testid="message"]', { hasText: 'See you tomorrow' });
  await edited.getByTestId('message-edited').waitFor();
  await alice.page.locator('[data-testid="message"]', { hasText: 'See you tomorrow' }).getByTestId('message-edited').waitFor();

  // A recall empties the message for both.
  await act(alice.page, 'Lunch at noon?', 'recall');
  await tid(alice.page, 'confirm-ok').click();
  await carol.page.getByTestId('message-recalled').waitFor();
  await alice.page.getByTestId('message-recalled').waitFor();
  assert.equal(await carol.page.locator('[data-testid="message-text"]', { hasText: 'Lunch at noon?' }).count(), 0);
  await shot(carol.page, '15-edited-and-recalled');

  // Carol deletes the edited one from her copy; a reload keeps it deleted.
  await act(carol.page, 'See you tomorrow', 'delete');
  await tid(carol.page, 'confirm-ok').click();
  await edited.waitFor({ state: 'detached' });
  await carol.page.reload();
  await waitConnected(carol.page);
  await openChat(carol.page, 'Alice');
  await carol.page.getByTestId('message-recalled').waitFor();
  assert.equal(await carol.page.locator('[data-testid="message-text"]', { hasText: 'See you tomorrow' }).count(), 0);
  assert.equal(await alice.page.locator('[data-testid="message-text"]', { hasText: 'See you tomorrow' }).count(), 1);
  // After a reload the list's last entry is the recall: shown as such.
  await tid(carol.page, 'nav-chats').click();
  const item = carol.page.locator('[data-testid="conv-item"][data-name="Alice"]');
  assert.equal(await item.getByTestId('conv-preview').innerText(), 'Message recalled');
  // The edit and the recall are not unread messages.
  const list = await rest(carol.token, 'GET', '/conversations');
  const chat = list.body.conversations.find((c) => c.peer_user_id === alice.id);
  assert.equal(chat.unread, 0);
  await tid(alice.page, 'nav-chats').click();
});
