// Act 2, friends and a 1:1 chat: adding friends, messages both ways (order,
// unread badges, the read cursor, typing, Shift+Enter), the emoji picker,
// photos and files, and scrolling up through older pages of history (which
// leaves Alice and Bob's chat longer than one page, for the later acts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addFriend, bubbleTexts, convItem, makePng, send, shot, tid, waitConnected, waitFor,
} from './helpers.js';
import { rest, server, serverConv, users } from './world.js';

test('friends with consent: alice asks bob and carol, bob asks back, carol accepts in her requests', async () => {
  const { alice, bob, carol } = users;
  await addFriend(alice.page, 'bob', 'friend-requested');
  await addFriend(alice.page, 'carol', 'friend-requested');
  // Alice's contacts list the two requests as sent, waiting.
  await tid(alice.page, 'nav-contacts').click();
  await alice.page.locator('[data-testid="request-sent"][data-name="Carol"]').waitFor();
  // Bob asking Alice back is a yes: friends at once.
  await addFriend(bob.page, 'alice');
  // Carol sees the request live (a notice, a Requests section) and accepts it.
  await carol.page.getByTestId('toast').filter({ hasText: 'Alice wants to be your friend' }).first().waitFor();
  await tid(carol.page, 'nav-contacts').click();
  const request = carol.page.locator('[data-testid="request-item"][data-name="Alice"]');
  await request.waitFor();
  await shot(carol.page, '17-friend-request');
  await request.getByTestId('request-accept').click();
  await carol.page.locator('[data-testid="contact-item"][data-name="Alice"]').waitFor();
  assert.equal(await carol.page.getByTestId('request-item').count(), 0);
  await tid(carol.page, 'nav-chats').click();
  await tid(alice.page, 'nav-contacts').click();
  await alice.page.locator('[data-testid="contact-item"][data-name="Bob"]').waitFor();
  await alice.page.locator('[data-testid="contact-item"][data-name="Carol"]').waitFor();
  assert.equal(await alice.page.getByTestId('request-sent').count(), 0);
  const friends = await rest(bob.token, 'GET', '/friends');
  assert.deepEqual(friends.body.friends.map((f) => f.username), ['alice']);
  const pending = await rest(carol.token, 'GET', '/friend-requests');
  assert.deepEqual(pending.body, { incoming: [], outgoing: [] });
});

test('1:1 chat both ways: order, unread badge, read cursor, typing, Shift+Enter', async () => {
  const { alice, bob } = users;
  // Alice opens the chat from her contacts; Bob stays on his chat list.
  await alice.page.locator('[data-testid="contact-item"][data-name="Bob"]').click();
  await tid(alice.page, 'chat-name').getByText('Bob').waitFor();
  for (const text of ['Hi Bob 1', 'Hi Bob 2', 'Hi Bob 3']) await send(alice.page, text);
  await alice.page.waitForFunction(() => document.querySelectorAll('[data-testid="message"][data-status="sent"]').length === 3);
  assert.deepEqual(await bubbleTexts(alice.page), ['Hi Bob 1', 'Hi Bob 2', 'Hi Bob 3']);

  // Bob: an unread badge of 3 on Alice's conversation, and in the rail.
  const item = convItem(bob.page, 'Alice');
  await item.getByTestId('unread-badge').getByText('3', { exact: true }).waitFor();
  await tid(bob.page, 'total-unread').getByText('3', { exact: true }).waitFor();
  const cid = await item.getAttribute('data-cid');
  assert.equal((await serverConv(bob, cid)).unread, 3);

  // Bob opens it: the messages in order, the badge gone, the read cursor posted.
  await item.click();
  await bob.page.waitForFunction(() => document.querySelectorAll('[data-testid="message-text"]').length === 3);
  assert.deepEqual(await bubbleTexts(bob.page), ['Hi Bob 1', 'Hi Bob 2', 'Hi Bob 3']);
  await item.getByTestId('unread-badge').waitFor({ state: 'detached' });
  await waitFor(async () => {
    const c = await serverConv(bob, cid);
    return c.read_seq_id === 3 && c.unread === 0;
  }, "bob's read cursor at 3");
  // Alice's list carries how far Bob has read (her "Read" mark after a reload).
  assert.equal((await serverConv(alice, cid)).peer_read_seq_id, 3);

  // Online state in the 1:1 header (the profile's `online`).
  const profile = await rest(alice.token, 'GET', `/users/${bob.id}`);
  if ('online' in profile.body) await tid(alice.page, 'chat-status').getByText('Online').waitFor();

  // Typing: Bob types, Alice's header says so.
  await tid(bob.page, 'composer-input').pressSequentially('Hel');
  await alice.page.locator('[data-testid="chat-status"][data-typing="true"]').getByText('typing…').waitFor();
  await tid(bob.page, 'composer-input').fill('');

  // Shift+Enter is a newline, Enter sends.
  const input = tid(bob.page, 'composer-input');
  await input.pressSequentially('line one');
  await input.press('Shift+Enter');
  await input.pressSequentially('line two');
  await input.press('Enter');
  await alice.page.waitForFunction(() => document.querySelectorAll('[data-testid="message-text"]').length === 4);
  assert.equal((await bubbleTexts(alice.page))[3], 'line one\nline two');
  assert.equal(await input.inputValue(), '');
  // Bob's reply appears on the left for Alice, her own on the right.
  const last = alice.page.locator('[data-testid="message"]').last();
  assert.equal(await last.getAttribute('data-from'), 'other');
  // Alice had the chat open: nothing unread for her.
  await waitFor(async () => (await serverConv(alice, cid)).unread === 0, "alice's unread at 0");
  await shot(alice.page, '02-chat');
  users.cidAB = cid;
});

test('emoji picker inserts into the message', async () => {
  const { alice } = users;
  await tid(alice.page, 'emoji-button').click();
  await tid(alice.page, 'emoji-picker').waitFor();
  await tid(alice.page, 'emoji-picker').locator('[data-emoji="🎉"]').click();
  await alice.page.keyboard.press('Escape');
  await tid(alice.page, 'emoji-picker').waitFor({ state: 'hidden' });
  assert.equal(await tid(alice.page, 'composer-input').inputValue(), '🎉');
  await tid(alice.page, 'composer-input').press('Enter');
  await users.bob.page.locator('[data-testid="message-text"]', { hasText: '🎉' }).waitFor();
});

test('image and file: upload, thumbnail, full-size preview, download', async () => {
  const { alice, bob } = users;
  const png = makePng(320, 200);
  await tid(alice.page, 'image-input').setInputFiles({ name: 'gradient.png', mimeType: 'image/png', buffer: png });
  await alice.page.locator('[data-testid="message"][data-type="image"][data-status="sent"]').waitFor();
  const img = bob.page.locator('[data-testid="message-image"]');
  await img.waitFor();
  await bob.page.waitForFunction(() => {
    const el = document.querySelector('[data-testid="message-image"]');
    return el && el.complete && el.naturalWidth === 320 && el.naturalHeight === 200;
  });
  const src = await img.getAttribute('src');
  assert.match(src, /^\/media\//);
  await img.click();
  await tid(bob.page, 'image-preview').waitFor();
  await bob.page.waitForFunction(() => document.querySelector('#preview-img').naturalWidth === 320);
  await bob.page.keyboard.press('Escape');
  await tid(bob.page, 'image-preview').waitFor({ state: 'hidden' });

  const notes = Buffer.from('GoChat notes\n'.repeat(100));
  await tid(alice.page, 'file-input').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: notes });
  const file = bob.page.locator('[data-testid="message-file"]');
  await file.getByTestId('file-name').getByText('notes.txt').waitFor();
  assert.equal(await file.getByTestId('file-size').innerText(), '1.3 KB');
  const href = await file.getByTestId('file-download').getAttribute('href');
  const body = await (await fetch(server.base + href)).arrayBuffer();
  assert.equal(Buffer.from(body).toString(), notes.toString());
});

test('history scrolls up through older pages (before_seq)', async () => {
  const { alice, bob } = users;
  // 60 messages through the public REST send, then a fresh page load.
  // (20 sends a second per user is the server's default limit: on a 429, wait
  // for the next second and send the same client_msg_id again.)
  for (let i = 1; i <= 60; i++) {
    const frame = {
      client_msg_id: `bulk-${i}`, to_user_id: alice.id, message_type: 'text', content: `bulk ${i}`, metadata: {}, mentions: [],
    };
    let res = await rest(bob.token, 'POST', '/messages', frame);
    while (res.status === 429) {
      await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 20));
      res = await rest(bob.token, 'POST', '/messages', frame);
    }
    assert.equal(res.status, 200, JSON.stringify(res.body));
  }
  await alice.page.reload();
  await waitConnected(alice.page);
  await convItem(alice.page, 'Bob').click();
  await alice.page.locator('[data-testid="message-text"]', { hasText: /^bulk 60$/ }).waitFor();
  const first = await alice.page.locator('[data-testid="message"][data-seq]').first().getAttribute('data-seq');
  assert.ok(Number(first) > 1, 'the first page starts in the middle');
  // Scroll to the top until the very first message is there.
  await alice.page.waitForFunction(() => {
    const box = document.querySelector('#messages');
    box.scrollTop = 0;
    box.dispatchEvent(new Event('scroll'));
    return document.querySelector('[data-testid="message"][data-seq="1"]') !== null;
  }, null, { polling: 200, timeout: 15000 });
  const seqs = await alice.page.locator('[data-testid="message"][data-seq]').evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
  const total = (await serverConv(alice, users.cidAB)).last_seq_id;
  assert.deepEqual(seqs, Array.from({ length: total }, (_, i) => i + 1), 'every message once, in order');
});
