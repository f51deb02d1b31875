// Act 3b, search: the chat list's search box finds what was said, across
// 1:1 chats and groups, and a found message opens its conversation.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shot, tid } from './helpers.js';
import { users } from './world.js';

test('search box: messages found by their words, opened with a click', async () => {
  const { alice } = users;
  const page = alice.page;
  await tid(page, 'nav-chats').click();
  await tid(page, 'list-search').fill('SNACKS');
  const hit = page.getByTestId('message-hit').filter({ hasText: "Great, I'll bring snacks" });
  await hit.waitFor();
  await tid(page, 'message-hits').getByText('Messages · 1').waitFor();
  await shot(page, '19-search');
  await hit.click();
  await tid(page, 'chat-name').getByText('Weekend trip').waitFor();
  // A word nobody wrote: nothing found, said so.
  await tid(page, 'list-search').fill('zebracorn');
  await page.getByText('No message says “zebracorn”.').waitFor();
  assert.equal(await page.getByTestId('message-hit').count(), 0);
  await tid(page, 'list-search').fill('');
  await page.getByTestId('message-hits').waitFor({ state: 'detached' });
});
