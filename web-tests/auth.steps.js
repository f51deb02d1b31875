// Act 1, signing up and in: the product serves the client, the sign-in
// screen's validation and errors, and three people (alice, bob, carol) signing
// up through the UI, a taken name refused. Their pages and ids go to `users`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  shot, tid, waitConnected,
} from './helpers.js';
import { PASSWORD, newUserPage, server, users, watch } from './world.js';

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

async function session(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem('gochat.session')));
}

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
