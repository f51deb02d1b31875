// Act 4, the shell around the chats: the contacts list and the search box,
// dark mode, the phone layout (the list and the chat as two views), keyboard
// use, and the profile and settings dialogs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  convItem, makePng, shot, tid, waitConnected,
} from './helpers.js';
import { PHONE, rest, server, users, watch } from './world.js';

test('contacts, dark mode and phone width', async () => {
  const { alice, bob } = users;
  await tid(alice.page, 'nav-contacts').click();
  await alice.page.locator('[data-testid="contact-group"][data-name="Weekend trip"]').waitFor();
  await shot(alice.page, '05-contacts');
  // The search box filters the list.
  await tid(alice.page, 'list-search').fill('weEK');
  await alice.page.locator('[data-testid="contact-item"]').first().waitFor({ state: 'detached' });
  await alice.page.locator('[data-testid="contact-group"][data-name="Weekend trip"]').waitFor();
  await tid(alice.page, 'nav-chats').click();
  await convItem(alice.page, 'Bob').waitFor({ state: 'detached' });
  assert.equal(await alice.page.locator('[data-testid="conv-item"]').count(), 1);
  await tid(alice.page, 'list-search').fill('');
  await convItem(alice.page, 'Bob').waitFor();

  // Dark mode from Settings; Escape closes the dialog.
  await tid(alice.page, 'nav-settings').click();
  await tid(alice.page, 'theme-dark').click();
  await alice.page.keyboard.press('Escape');
  await tid(alice.page, 'dialog-settings').waitFor({ state: 'hidden' });
  assert.equal(await alice.page.evaluate(() => document.documentElement.dataset.theme), 'dark');
  const bg = await alice.page.evaluate(() => getComputedStyle(document.querySelector('.sidebar')).backgroundColor);
  const [r, g, b] = bg.match(/\d+/g).map(Number);
  assert.ok(r + g + b < 120, `dark sidebar, got ${bg}`);
  await convItem(alice.page, 'Weekend trip').click();
  await shot(alice.page, '06-dark');
  assert.equal(await alice.page.evaluate(() => JSON.parse(localStorage.getItem('gochat.settings')).theme), 'dark');
  await tid(alice.page, 'nav-settings').click();
  await tid(alice.page, 'theme-light').click();
  await alice.page.keyboard.press('Escape');

  // Phone width: the list and the chat are two views with a back button.
  const phone = await bob.context.newPage();
  await phone.setViewportSize(PHONE);
  watch.attach(phone, 'bob-phone');
  await phone.goto(server.base + '/');
  await waitConnected(phone);
  await convItem(phone, 'Alice').waitFor();
  assert.equal(await phone.locator('#chat').isVisible(), false);
  await shot(phone, '07-phone-list');
  await convItem(phone, 'Alice').click();
  await tid(phone, 'back-button').waitFor();
  await phone.locator('[data-testid="message-text"]', { hasText: /^bulk 60$/ }).waitFor();
  assert.equal(await phone.locator('.sidebar').isVisible(), false);
  const width = await phone.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= PHONE.width, `no horizontal overflow, got ${width}`);
  await shot(phone, '08-phone-chat');
  await tid(phone, 'back-button').click();
  await convItem(phone, 'Alice').waitFor();
  await phone.close();
});

test('keyboard: dialogs close on Escape, focus is visible', async () => {
  const { alice } = users;
  await tid(alice.page, 'plus-button').focus();
  await alice.page.keyboard.press('Enter');
  await tid(alice.page, 'menu-new-chat').waitFor();
  assert.equal(await alice.page.evaluate(() => document.activeElement.dataset.testid), 'menu-new-chat');
  await alice.page.keyboard.press('Enter');
  await tid(alice.page, 'dialog-new-chat').waitFor();
  await alice.page.keyboard.press('Escape');
  await tid(alice.page, 'dialog-new-chat').waitFor({ state: 'hidden' });
  await tid(alice.page, 'nav-profile').click();
  await tid(alice.page, 'dialog-profile').waitFor();
  await alice.page.keyboard.press('Escape');
  await tid(alice.page, 'dialog-profile').waitFor({ state: 'hidden' });
  // Every control in the shell is a real button or input.
  const divButtons = await alice.page.locator('#main-screen [onclick], #main-screen div[role="button"]').count();
  assert.equal(divButtons, 0);
});

test('profile and settings: nickname, avatar upload, sound and desktop notifications', async () => {
  const { carol } = users;
  const page = carol.page;
  await tid(page, 'nav-profile').click();
  await tid(page, 'dialog-profile').waitFor();
  await tid(page, 'avatar-input').setInputFiles({ name: 'me.png', mimeType: 'image/png', buffer: makePng(96, 96, [20, 184, 166], [99, 102, 241]) });
  await page.locator('#nav-profile img[src^="/media/"]').waitFor();
  await tid(page, 'profile-nickname').fill('Carol C');
  await shot(page, '10-profile');
  await tid(page, 'profile-save').click();
  await tid(page, 'dialog-profile').waitFor({ state: 'hidden' });
  const me = await rest(carol.token, 'GET', '/users/me');
  assert.equal(me.body.nickname, 'Carol C');
  assert.match(me.body.avatar_url, /^\/media\//);

  await carol.context.grantPermissions(['notifications'], { origin: server.base });
  await tid(page, 'nav-settings').click();
  await tid(page, 'dialog-settings').waitFor();
  assert.equal(await tid(page, 'setting-sound').isChecked(), true);
  await tid(page, 'setting-sound').uncheck();
  await tid(page, 'setting-desktop').check();
  await page.waitForFunction(() => JSON.parse(localStorage.getItem('gochat.settings')).desktop === true);
  await shot(page, '11-settings');
  await page.keyboard.press('Escape');
  await tid(page, 'dialog-settings').waitFor({ state: 'hidden' });
  const settings = await page.evaluate(() => JSON.parse(localStorage.getItem('gochat.settings')));
  assert.equal(settings.sound, false);
  assert.equal(settings.desktop, true);
});
