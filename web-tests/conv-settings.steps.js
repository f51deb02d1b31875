// Act 3c, the user's own settings: mute, pin and archive a conversation
// from its details panel (the list follows: flags, pinned first, archived
// behind a toggle), and in Settings who may become a friend and the blocked
// users, with Unblock. Everything is set back at the end for the next acts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convItem, shot, tid, waitFor } from './helpers.js';
import { PASSWORD, rest, server, users } from './world.js';

test('mute, pin and archive a conversation; the list follows', async () => {
  const { alice } = users;
  const page = alice.page;
  await tid(page, 'nav-chats').click();
  await tid(page, 'list-search').fill('');
  await convItem(page, 'Carol').click();
  await tid(page, 'chat-name').getByText('Carol').waitFor();
  if (await page.locator('#info-panel').isHidden()) await tid(page, 'chat-info-button').click();
  await tid(page, 'conv-mute').click();
  await convItem(page, 'Carol').getByTestId('conv-muted').waitFor();
  await tid(page, 'conv-pin').click();
  await convItem(page, 'Carol').getByTestId('conv-pinned').waitFor();
  const first = page.getByTestId('conv-item').first();
  assert.equal(await first.getAttribute('data-name'), 'Carol', 'pinned first');
  const cid = await convItem(page, 'Carol').getAttribute('data-cid');
  const listed = (await rest(alice.token, 'GET', '/conversations')).body.conversations.find((c) => c.conversation_id === cid);
  assert.deepEqual([listed.muted, listed.pinned, listed.archived], [true, true, false]);
  await shot(page, '20-muted-and-pinned');

  await tid(page, 'conv-archive').click();
  await convItem(page, 'Carol').waitFor({ state: 'detached' });
  await tid(page, 'archived-toggle').getByText('Archived · 1').click();
  await convItem(page, 'Carol').waitFor();
  for (const id of ['conv-archive', 'conv-pin', 'conv-mute']) {
    await tid(page, id).click();
    await page.locator(`[data-testid="${id}"][aria-pressed="false"]`).waitFor();
  }
  await tid(page, 'archived-toggle').waitFor({ state: 'detached' });
  assert.equal(await convItem(page, 'Carol').getAttribute('data-muted'), 'false');
});

test('settings: who may become a friend, and the blocked users with Unblock', async () => {
  const { alice } = users;
  const page = alice.page;
  // Mallory, blocked by Alice through the API.
  const base = `${server.base}/api/v1`;
  const post = (p, body) => fetch(`${base}${p}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  await post('/auth/register', { username: 'mallory', password: PASSWORD, nickname: 'Mallory' });
  const mallory = await (await post('/auth/login', { username: 'mallory', password: PASSWORD })).json();
  assert.equal((await rest(alice.token, 'POST', '/blocks', { user_id: mallory.user_id })).status, 201);

  await tid(page, 'nav-settings').click();
  await tid(page, 'dialog-settings').waitFor();
  const row = page.locator(`[data-testid="blocked-user"][data-user-id="${mallory.user_id}"]`);
  await row.getByText('Mallory').waitFor();
  await tid(page, 'setting-friend-policy').selectOption('closed');
  await page.getByTestId('toast').filter({ hasText: 'Saved' }).first().waitFor();
  assert.equal((await rest(alice.token, 'GET', '/users/me')).body.friend_policy, 'closed');
  await shot(page, '21-privacy-settings');
  await row.getByTestId('unblock').click();
  await row.waitFor({ state: 'detached' });
  assert.deepEqual((await rest(alice.token, 'GET', '/blocks')).body.users, []);
  await tid(page, 'setting-friend-policy').selectOption('approve');
  await waitFor(async () => (await rest(alice.token, 'GET', '/users/me')).body.friend_policy === 'approve', 'policy back to approve');
  await page.keyboard.press('Escape');
  await tid(page, 'dialog-settings').waitFor({ state: 'hidden' });
});
