// The GoChat web client in a real browser (the system Chromium through
// playwright-core), against a standalone server this file starts on free ports
// with a fresh data dir. The steps build on each other and run in order.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  ROOT, OUT, SHOTS, Server, ErrorWatch, freePort, launchBrowser, makePng,
} from './helpers.js';

const BIN = process.env.GOCHAT_BIN || path.join(ROOT, 'target', 'debug', 'gochat');
const PASSWORD = 'correct-horse-1';
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

const watch = new ErrorWatch();
let server;
let dataDir;
let browser;
const users = {}; // name -> {context, page, id, token}

const tid = (page, id) => page.getByTestId(id);

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

async function newUserPage(name, viewport = DESKTOP) {
  const context = await browser.newContext({ viewport, locale: 'en-US', timezoneId: 'UTC' });
  const page = await context.newPage();
  watch.attach(page, name);
  await page.goto(server.base + '/');
  return { context, page };
}

async function register(page, username, nickname) {
  await tid(page, 'tab-register').click();
  await tid(page, 'auth-username').fill(username);
  await tid(page, 'auth-nickname').fill(nickname);
  await tid(page, 'auth-password').fill(PASSWORD);
  await tid(page, 'auth-confirm').fill(PASSWORD);
  await tid(page, 'auth-submit').click();
  await tid(page, 'nav-profile').waitFor();
  await waitConnected(page);
}

async function waitConnected(page) {
  await page.waitForFunction(() => window.gochat && window.gochat.socket.state === 'open');
}

async function session(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem('gochat.session')));
}

async function rest(token, method, urlPath, body) {
  const res = await fetch(`${server.base}/api/v1${urlPath}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function waitFor(fn, what, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function serverConv(user, cid) {
  const res = await rest(user.token, 'GET', '/conversations');
  return (res.body.conversations || []).find((c) => c.conversation_id === cid);
}

async function addFriend(page, username) {
  await tid(page, 'plus-button').click();
  await tid(page, 'menu-add-friend').click();
  await tid(page, 'add-query').fill(username);
  await tid(page, 'add-search').click();
  const row = page.locator(`[data-testid="user-result"][data-username="${username}"]`);
  await row.getByTestId('add-friend-button').click();
  await row.getByTestId('friend-added').waitFor();
  if (username === 'carol') await shot(page, '13-add-friend');
  await page.keyboard.press('Escape');
  await tid(page, 'dialog-add').waitFor({ state: 'hidden' });
}

function convItem(page, name) {
  return page.locator(`[data-testid="conv-item"][data-name="${name}"]`);
}

async function send(page, text) {
  const input = tid(page, 'composer-input');
  await input.fill(text);
  await input.press('Enter');
}

/** Texts of the text bubbles in the open chat, top to bottom. */
async function bubbleTexts(page) {
  return page.locator('[data-testid="message"] [data-testid="message-text"]').allInnerTexts();
}

before(async () => {
  assert.ok(fs.existsSync(BIN), `${BIN} is missing: cargo build --bin gochat`);
  fs.mkdirSync(SHOTS, { recursive: true });
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gochat-web-'));
  server = new Server({
    bin: BIN,
    dataDir,
    httpPort: await freePort(),
    wsPort: await freePort(),
    logFile: path.join(OUT, 'server.log'),
  });
  fs.writeFileSync(server.logFile, '');
  await server.start();
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

test('the product serves the client and its config', async () => {
  const page = await fetch(`${server.base}/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type'), /text\/html/);
  assert.match(await page.text(), /<script type="module" src="app\.js">/);
  for (const [file, type] of [['app.js', /javascript/], ['style.css', /text\/css/]]) {
    const res = await fetch(`${server.base}/${file}`);
    assert.equal(res.status, 200, file);
    assert.match(res.headers.get('content-type'), type, file);
  }
  const cfg = await (await fetch(`${server.base}/api/v1/client/config`)).json();
  assert.equal(cfg.ws_url, `ws://127.0.0.1:${server.wsPort}/ws`);
});

test('sign-in screen: validation, clear errors, switching modes', async () => {
  const { context, page } = await newUserPage('alice');
  users.alice = { context, page };
  await tid(page, 'auth-form').waitFor();
  await shot(page, '01-login');

  // Empty sign-in: field errors, no request.
  await tid(page, 'auth-submit').click();
  await assert.doesNotReject(tid(page, 'err-username').getByText('Enter your username').waitFor());
  await tid(page, 'err-password').getByText('Enter your password').waitFor();

  // Create account: the username, password and confirmation rules.
  await tid(page, 'auth-switch').click();
  await tid(page, 'auth-confirm').waitFor();
  await tid(page, 'auth-username').fill('a!');
  await tid(page, 'auth-password').fill('short');
  await tid(page, 'auth-confirm').fill('different');
  await tid(page, 'auth-submit').click();
  await tid(page, 'err-username').getByText('3 to 32 characters').waitFor();
  await tid(page, 'err-password').getByText('At least 8 characters').waitFor();
  await tid(page, 'err-confirm').getByText('do not match').waitFor();
  assert.equal(await tid(page, 'auth-username').getAttribute('aria-invalid'), 'true');

  // Wrong credentials: the server's 401 becomes a clear message.
  await tid(page, 'tab-login').click();
  await assert.equal(await tid(page, 'auth-confirm').isVisible(), false);
  await watch.allowDuring([/status of 401/], async () => {
    await tid(page, 'auth-username').fill('nobody');
    await tid(page, 'auth-password').fill('wrong-password');
    await tid(page, 'auth-submit').click();
    await tid(page, 'auth-error').getByText('Wrong username or password').waitFor();
  });
});

test('three users register through the UI (a taken name is refused)', async () => {
  await register(users.alice.page, 'alice', 'Alice');
  const b = await newUserPage('bob');
  users.bob = b;
  await register(b.page, 'bob', 'Bob');
  const c = await newUserPage('carol');
  users.carol = c;
  await watch.allowDuring([/status of 409/], async () => {
    await tid(c.page, 'tab-register').click();
    await tid(c.page, 'auth-username').fill('alice');
    await tid(c.page, 'auth-password').fill(PASSWORD);
    await tid(c.page, 'auth-confirm').fill(PASSWORD);
    await tid(c.page, 'auth-submit').click();
    await tid(c.page, 'err-username').getByText('taken').waitFor();
  });
  await register(c.page, 'carol', 'Carol');
  for (const name of ['alice', 'bob', 'carol']) {
    const s = await session(users[name].page);
    users[name].id = s.user_id;
    users[name].token = s.token;
  }
  assert.equal(new Set([users.alice.id, users.bob.id, users.carol.id]).size, 3);
});

test('friends: alice adds bob and carol, bob adds alice', async () => {
  const { alice, bob } = users;
  await addFriend(alice.page, 'bob');
  await addFriend(alice.page, 'carol');
  await addFriend(bob.page, 'alice');
  await tid(alice.page, 'nav-contacts').click();
  await alice.page.locator('[data-testid="contact-item"][data-name="Bob"]').waitFor();
  await alice.page.locator('[data-testid="contact-item"][data-name="Carol"]').waitFor();
  const friends = await rest(bob.token, 'GET', '/friends');
  assert.deepEqual(friends.body.friends.map((f) => f.username), ['alice']);
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
  users.gcid = gcid;
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
  await tid(page, 'dialog-add').waitFor({ state: 'hidden' });
  await tid(page, 'chat-name').getByText('Weekend trip').waitFor();
  await page.getByTestId('system-message').getByText('Carol C joined the group').waitFor();
  await tid(page, 'chat-status').getByText('3 members').waitFor();
});

test('a lost message frame (seq gap) is pulled with after_seq and merged in order', async () => {
  const { bob, carol } = users;
  // Carol's socket goes through a proxy that drops one frame.
  let dropped = 0;
  await carol.page.routeWebSocket(/\/ws/, (ws) => {
    const upstream = ws.connectToServer();
    upstream.onMessage((msg) => {
      if (typeof msg === 'string' && msg.includes('"content":"gap 2"') && msg.includes('"type":"message"')) {
        dropped += 1;
        return;
      }
      ws.send(msg);
    });
  });
  await carol.page.evaluate(() => window.gochat.socket.ws.close());
  await carol.page.waitForFunction(() => window.gochat.socket.state !== 'open');
  await waitConnected(carol.page);
  await tid(carol.page, 'chat-name').getByText('Weekend trip').waitFor();
  await tid(bob.page, 'chat-name').getByText('Weekend trip').waitFor();
  for (const text of ['gap 1', 'gap 2', 'gap 3']) await send(bob.page, text);
  await carol.page.waitForFunction(() => [...document.querySelectorAll('[data-testid="message-text"]')].some((e) => e.textContent === 'gap 2'));
  assert.equal(dropped, 1, 'the frame was dropped on its way');
  const texts = (await bubbleTexts(carol.page)).filter((t) => t.startsWith('gap '));
  assert.deepEqual(texts, ['gap 1', 'gap 2', 'gap 3']);
  const seqs = await carol.page.locator('[data-testid="message"][data-seq], [data-testid="system-message"]').evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'in seq order');
  assert.equal(new Set(seqs).size, seqs.length, 'no duplicates');
});

test('heartbeat: a ping every 20 s; a silent link is dropped and reopened', async () => {
  const { bob } = users;
  const page = await bob.context.newPage();
  watch.attach(page, 'bob-clock');
  const seen = [];
  let connections = 0;
  let mute = false;
  await page.routeWebSocket(/\/ws/, (ws) => {
    connections += 1;
    const upstream = ws.connectToServer();
    ws.onMessage((msg) => { seen.push(['out', msg]); upstream.send(msg); });
    upstream.onMessage((msg) => { seen.push(['in', msg]); if (!mute) ws.send(msg); });
  });
  await page.clock.install();
  await page.goto(server.base + '/');
  await waitConnected(page);
  await page.clock.fastForward(21000);
  await waitFor(() => seen.some(([d, m]) => d === 'out' && JSON.parse(m).type === 'ping')
    && seen.some(([d, m]) => d === 'in' && JSON.parse(m).type === 'pong'), 'a ping and its pong');
  // Nothing reaches the page any more: after 50 s of silence it reconnects.
  mute = true;
  await page.clock.fastForward(61000);
  await waitFor(() => connections === 2, 'a second connection');
  mute = false;
  await waitConnected(page);
  await page.close();
});

test('kick: a second connection of the same device signs the first out, no auto-reconnect', async () => {
  const { carol } = users;
  const device = await carol.page.evaluate(() => sessionStorage.getItem('gochat.device'));
  const other = await carol.context.newPage();
  watch.attach(other, 'carol-2');
  await other.addInitScript((d) => sessionStorage.setItem('gochat.device', d), device);
  await other.goto(server.base + '/');
  await waitConnected(other);
  await tid(carol.page, 'dialog-kicked').waitFor();
  assert.equal(await carol.page.evaluate(() => window.gochat.socket.state), 'kicked');
  await tid(carol.page, 'offline-banner').getByText('Signed out on this device').waitFor();
  await other.close();
  await tid(carol.page, 'kicked-reconnect').click();
  await waitConnected(carol.page);
  await tid(carol.page, 'offline-banner').waitFor({ state: 'hidden' });
});

test('server restart: sends during the outage are pending, then delivered once', async () => {
  const { alice, bob } = users;
  await convItem(alice.page, 'Bob').click();
  await convItem(bob.page, 'Alice').click();
  await tid(bob.page, 'chat-name').getByText('Alice').waitFor();
  const total = (await serverConv(alice, users.cidAB)).last_seq_id;
  await alice.page.waitForFunction((n) => document.querySelectorAll('[data-testid="message"][data-status="sent"]').length === n, total);
  await bob.page.waitForFunction((n) => document.querySelectorAll('[data-testid="message"][data-seq]').length >= 40, total);
  const bobBefore = await bob.page.locator('[data-testid="message"]').count();

  const outage = [/WebSocket connection to .* failed/, /ERR_CONNECTION_REFUSED/, /Failed to load resource/];
  await watch.allowDuring(outage, async () => {
    await server.stop();
    await tid(alice.page, 'offline-banner').waitFor();
    await tid(bob.page, 'offline-banner').waitFor();
    for (const text of ['sent offline 1', 'sent offline 2', 'sent offline 3']) await send(alice.page, text);
    await alice.page.waitForFunction(() => document.querySelectorAll('[data-testid="message"][data-status="pending"]').length === 3);
    await shot(alice.page, '09-offline-pending');
    await server.start();
    await waitConnected(alice.page);
    await waitConnected(bob.page);
  });
  await tid(alice.page, 'offline-banner').waitFor({ state: 'hidden' });
  await alice.page.waitForFunction(() => document.querySelectorAll('[data-testid="message"][data-status="pending"]').length === 0);
  await bob.page.waitForFunction(() => [...document.querySelectorAll('[data-testid="message-text"]')].some((e) => e.textContent === 'sent offline 3'));
  for (const page of [alice.page, bob.page]) {
    const texts = await bubbleTexts(page);
    const offline = texts.filter((t) => t.startsWith('sent offline'));
    assert.deepEqual(offline, ['sent offline 1', 'sent offline 2', 'sent offline 3'], 'each once, in order');
    const seqs = await page.locator('[data-testid="message"][data-seq]').evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
    assert.equal(new Set(seqs).size, seqs.length, 'no seq twice');
  }
  assert.equal(await bob.page.locator('[data-testid="message"]').count(), bobBefore + 3);
  assert.equal((await serverConv(alice, users.cidAB)).last_seq_id, total + 3);
});

test('the outbox survives a page reload while the socket is down', async () => {
  const { alice, bob } = users;
  let blocked = true;
  await alice.page.routeWebSocket(/\/ws/, (ws) => {
    if (blocked) ws.close({ code: 1013, reason: 'test: blocked' });
    else ws.connectToServer();
  });
  await alice.page.evaluate(() => window.gochat.socket.ws && window.gochat.socket.ws.close());
  await tid(alice.page, 'offline-banner').waitFor();
  await send(alice.page, 'kept across a reload');
  await alice.page.locator('[data-testid="message"][data-status="pending"]').waitFor();
  await alice.page.reload();
  await convItem(alice.page, 'Bob').click();
  await alice.page.locator('[data-testid="message"][data-status="pending"]', { hasText: 'kept across a reload' }).waitFor();
  blocked = false;
  await alice.page.evaluate(() => window.gochat.socket.reconnectNow());
  await waitConnected(alice.page);
  await alice.page.locator('[data-testid="message"][data-status="pending"]').waitFor({ state: 'detached' });
  await bob.page.locator('[data-testid="message-text"]', { hasText: 'kept across a reload' }).waitFor();
  assert.equal(await bob.page.locator('[data-testid="message-text"]', { hasText: 'kept across a reload' }).count(), 1);
  await alice.page.unrouteAll({ behavior: 'ignoreErrors' });
});

test('logout ends the session on the server', async () => {
  const { carol } = users;
  await tid(carol.page, 'nav-settings').click();
  await tid(carol.page, 'settings-logout').click();
  await tid(carol.page, 'auth-form').waitFor();
  assert.equal(await carol.page.evaluate(() => localStorage.getItem('gochat.session')), null);
  assert.equal((await rest(carol.token, 'GET', '/users/me')).status, 401);
});

test('no console errors or page errors in any page', () => {
  assert.deepEqual(watch.errors, []);
});
