// Act 3, a group: Alice creates "Weekend trip" with Bob and Carol; the @
// picker, the mention marker and its read state, the members panel; then
// Carol leaves, finds the group by name and asks to join again, Alice lets
// her in; Alice makes Bob an admin, mutes Carol, mutes the whole group.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  convItem, makePng, send, shot, tid, waitFor,
} from './helpers.js';
import { rest, serverConv, users } from './world.js';

test('group with a third user: members, @mention picker, mention marker', async () => {
  const { alice, bob, carol } = users;
  await tid(alice.page, 'plus-button').click();
  await tid(alice.page, 'menu-create-group').click();
  await tid(alice.page, 'group-name').fill('Weekend trip');
  await alice.page.locator(`[data-testid="group-member-option"][data-user-id="${bob.id}"]`).check();
  await alice.page.locator(`[data-testid="group-member-option"][data-user-id="${carol.id}"]`).check();
  await shot(alice.page, '12-create-group');
  await tid(alice.page, 'group-create').click();
  await tid(alice.page, 'chat-name').getByText('Weekend trip').waitFor();
  await tid(alice.page, 'chat-status').getByText('3 members').waitFor();
  await alice.page.getByTestId('system-message').getByText('created the group').waitFor();

  // Carol sees the group appear; Bob opens it and mentions Alice with the picker.
  await convItem(carol.page, 'Weekend trip').waitFor();
  await convItem(bob.page, 'Weekend trip').click();
  await tid(bob.page, 'chat-name').getByText('Weekend trip').waitFor();
  await tid(bob.page, 'at-button').waitFor();

  // Alice looks at another chat meanwhile.
  await convItem(alice.page, 'Bob').click();
  await tid(alice.page, 'chat-name').getByText('Bob').waitFor();

  const input = tid(bob.page, 'composer-input');
  await input.pressSequentially('@Al');
  const option = bob.page.locator(`[data-testid="mention-option"][data-user-id="${alice.id}"]`);
  await option.waitFor();
  assert.equal(await bob.page.locator(`[data-testid="mention-option"][data-user-id="${carol.id}"]`).count(), 0);
  await input.press('Enter');
  assert.equal(await input.inputValue(), '@Alice ');
  await input.pressSequentially('are you in for Saturday?');
  await input.press('Enter');

  // Alice: the @ marker and the unread badge on the group, then the mention itself.
  const group = convItem(alice.page, 'Weekend trip');
  await group.getByTestId('mention-marker').waitFor();
  await group.getByTestId('unread-badge').waitFor();
  const gcid = await group.getAttribute('data-cid');
  assert.equal((await serverConv(alice, gcid)).unread_mentions, 1);
  const stored = await rest(alice.token, 'GET', `/conversations/${gcid}/messages?after_seq=0`);
  const sent = stored.body.messages.find((m) => m.from_user_id === bob.id);
  assert.equal(sent.content, `@[user_id:${alice.id}] are you in for Saturday?`);
  assert.deepEqual(sent.mentions, [alice.id]);
  await shot(alice.page, '03-mention-marker');

  await group.click();
  const mention = alice.page.locator('[data-testid="message"] [data-testid="mention"]');
  await mention.getByText('@Alice').waitFor();
  assert.match(await mention.getAttribute('class'), /\bme\b/);
  // Bob's name above his bubble in the group.
  await alice.page.getByTestId('message-sender').getByText('Bob').waitFor();
  await group.getByTestId('mention-marker').waitFor({ state: 'detached' });
  await waitFor(async () => (await serverConv(alice, gcid)).unread_mentions === 0, 'mention read');

  // A little conversation: a reply, a photo, and Carol.
  await send(alice.page, 'Count me in! 🎉');
  await tid(alice.page, 'image-input').setInputFiles({ name: 'trail.png', mimeType: 'image/png', buffer: makePng(480, 300, [14, 165, 233], [16, 185, 129]) });
  await alice.page.locator('[data-testid="message"][data-type="image"][data-status="sent"]').waitFor();
  await convItem(carol.page, 'Weekend trip').click();
  await carol.page.locator('[data-testid="message"][data-type="image"]').waitFor();
  await send(carol.page, "Great, I'll bring snacks 🍕");
  await alice.page.locator('[data-testid="message-text"]', { hasText: 'snacks' }).waitFor();
  await bob.page.locator('[data-testid="message-text"]', { hasText: 'snacks' }).waitFor();

  // The members panel: three members, Alice the owner; Escape closes it.
  await tid(alice.page, 'chat-info-button').click();
  await alice.page.waitForFunction(() => document.querySelectorAll('[data-testid="group-member"]').length === 3);
  await shot(alice.page, '04-group');
  await alice.page.keyboard.press('Escape');
  await tid(alice.page, 'info-panel').waitFor({ state: 'hidden' });

  // Read by: Bob and Carol have both had the chat open since Alice wrote.
  const mine = (await rest(alice.token, 'GET', `/conversations/${gcid}/messages?after_seq=0`)).body.messages
    .find((m) => m.content === 'Count me in! 🎉');
  const readsPath = `/conversations/${gcid}/messages/${mine.message_id}/reads`;
  await waitFor(async () => (await rest(alice.token, 'GET', readsPath)).body.read_count === 2, 'both read cursors');
  const row = alice.page.locator('[data-testid="message"]', { hasText: 'Count me in!' });
  await row.hover();
  await row.getByTestId('message-actions').click();
  await row.getByTestId('message-reads').click();
  await tid(alice.page, 'dialog-reads').waitFor();
  assert.equal(await tid(alice.page, 'reads-count').innerText(), 'Read by 2.');
  await waitFor(async () => (await alice.page.getByTestId('reader').allInnerTexts()).join(',') === 'Bob,Carol'
    || (await alice.page.getByTestId('reader').allInnerTexts()).join(',') === 'Carol,Bob', 'reader names');
  await shot(alice.page, '16-read-by');
  await alice.page.keyboard.press('Escape');
  await tid(alice.page, 'dialog-reads').waitFor({ state: 'hidden' });
});

test('leave a group, find it by name and join it again', async () => {
  const { carol } = users;
  const page = carol.page;
  await convItem(page, 'Weekend trip').click();
  await tid(page, 'chat-info-button').click();
  await page.getByRole('button', { name: 'Leave group' }).click();
  await tid(page, 'dialog-confirm').waitFor();
  await tid(page, 'confirm-ok').click();
  await convItem(page, 'Weekend trip').waitFor({ state: 'detached' });
  const mine = await rest(carol.token, 'GET', '/groups');
  assert.equal(mine.body.groups.length, 0);

  await tid(page, 'plus-button').click();
  await tid(page, 'menu-add-friend').click();
  await tid(page, 'add-kind-groups').click();
  await tid(page, 'add-query').fill('Weekend');
  await tid(page, 'add-search').click();
  await tid(page, 'group-result').getByTestId('join-group-button').click();
  // New groups ask for approval: Carol's join waits for Alice, the owner.
  await tid(page, 'group-result').getByTestId('join-requested').waitFor();
  await page.keyboard.press('Escape');
  await tid(page, 'dialog-add').waitFor({ state: 'hidden' });

  const { alice } = users;
  await convItem(alice.page, 'Weekend trip').click();
  await tid(alice.page, 'chat-name').getByText('Weekend trip').waitFor();
  if (await alice.page.locator('#info-panel').isHidden()) await tid(alice.page, 'chat-info-button').click();
  const request = alice.page.locator(`[data-testid="join-request"][data-user-id="${carol.id}"]`);
  await request.getByTestId('join-accept').click();
  await request.waitFor({ state: 'detached' });

  await convItem(page, 'Weekend trip').click();
  await tid(page, 'chat-name').getByText('Weekend trip').waitFor();
  await page.getByTestId('system-message').getByText('Carol joined the group').waitFor();
  await tid(page, 'chat-status').getByText('3 members').waitFor();
});

test('group administration: make an admin, mute and unmute a member, mute-all', async () => {
  const { alice, bob, carol } = users;
  const page = alice.page; // the details panel of "Weekend trip" is open
  const row = (u) => page.locator(`[data-testid="group-member"][data-user-id="${u.id}"]`);
  const actions = (u) => row(u).locator('xpath=..').locator('.member-actions');
  await actions(bob).getByTestId('member-role').click();
  await page.locator(`[data-testid="group-member"][data-user-id="${bob.id}"][data-role="admin"]`).waitFor();
  await page.getByTestId('system-message').getByText('made Bob an admin').waitFor();

  await actions(carol).getByTestId('member-mute').click();
  await row(carol).getByTestId('member-muted').waitFor();
  const gid = (await rest(alice.token, 'GET', '/groups')).body.groups.find((g) => g.name === 'Weekend trip').group_id;
  const refused = await rest(carol.token, 'POST', '/messages', { client_msg_id: 'muted-1', group_id: gid, content: 'hello?' });
  assert.equal(refused.status, 403);
  // What a role does not see is left out, not printed as "null".
  assert.equal(await page.locator('#info-panel').getByText('null', { exact: true }).count(), 0);
  await shot(page, '18-group-admin');
  await actions(carol).getByTestId('member-unmute').click();
  await row(carol).getByTestId('member-muted').waitFor({ state: 'detached' });

  await tid(page, 'mute-all').check();
  await page.getByTestId('system-message').getByText('muted the group').waitFor();
  assert.equal((await rest(carol.token, 'POST', '/messages', { client_msg_id: 'muted-2', group_id: gid, content: 'hi' })).status, 403);
  assert.equal((await rest(bob.token, 'POST', '/messages', { client_msg_id: 'admin-1', group_id: gid, content: 'admins may' })).status, 200);
  await tid(page, 'mute-all').uncheck();
  await page.getByTestId('system-message').getByText('unmuted the group').waitFor();
  assert.equal((await rest(carol.token, 'POST', '/messages', { client_msg_id: 'muted-3', group_id: gid, content: 'back' })).status, 200);
});
