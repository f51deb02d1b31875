// Act 5, the link and the session: a lost message frame (a seq gap) pulled
// and merged in order, the heartbeat, a kick by a second connection of the
// same device, sends during a server restart (pending, then delivered once),
// the outbox surviving a reload while the socket is down, and logging out.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bubbleTexts, convItem, send, shot, tid, waitConnected, waitFor,
} from './helpers.js';
import { rest, server, serverConv, users, watch } from './world.js';

test('a lost message frame (seq gap) is pulled with after_seq and merged in order', async () => {
  const { bob, carol } = users;
  // Carol's socket goes through a proxy that drops one frame.
  let dropped = 0;
  const out = [];
  await carol.page.routeWebSocket(/\/ws/, (ws) => {
    const upstream = ws.connectToServer();
    ws.onMessage((msg) => { out.push(msg); upstream.send(msg); });
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
  // Carol's tab reports what it holds, the pulled frame included, so a
  // push waiting for her phone is dropped (PROTOCOL v1.1 `delivered`).
  const last = await carol.page.locator('[data-testid="message"][data-seq]')
    .evaluateAll((els) => Math.max(...els.map((e) => Number(e.dataset.seq))));
  await waitFor(() => out.some((m) => {
    const f = JSON.parse(m);
    return f.type === 'delivered' && f.seq_id === last;
  }), 'a delivered frame up to the last message');
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
