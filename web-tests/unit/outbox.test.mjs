// outbox.js with the socket events that drive it (sync.js): a send stays
// pending, in memory and in localStorage, until the server has it, and every
// resend carries the same client_msg_id, so the server can dedup it.

import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeWebSocket, sentFrames, until } from './fakes.mjs';
import { connect, dropConnection, message, ME, openChat, PEER, server, signIn } from './client.mjs';
import {
  discardSend, loadOutbox, queueSend, resendOverdue, retrySend,
} from '../../control/web/outbox.js';
import { convForUser, S } from '../../control/web/store.js';
import { sock } from '../../control/web/transport.js';

beforeEach(signIn);
afterEach(() => sock.stop());

const ids = (frames) => frames.map((f) => f.client_msg_id);
const stored = () => JSON.parse(localStorage.getItem(`gochat.outbox.${ME}`));
const ack = (send, seq) => ({
  type: 'ack', client_msg_id: send.client_msg_id, message_id: String(seq), conversation_id: convForUser(PEER).cid, seq_id: seq, timestamp: 1,
});

test('a send while offline waits, pending and saved, and goes out once on connect', async () => {
  queueSend(convForUser(PEER), 'text', 'written offline');
  const [entry] = S.outbox;
  assert.equal(entry.status, 'pending');
  assert.equal(entry.sentAt, 0);
  assert.deepEqual(ids(stored()), [entry.client_msg_id]);
  await connect();
  assert.deepEqual(ids(sentFrames('send')), [entry.client_msg_id]);
  assert.equal(S.outbox.length, 1, 'still pending: no ack yet');
  assert.equal(S.outbox[0].status, 'pending');
});

test('unacked across a reconnect: sent again with the same client_msg_id; after the ack, never again', async () => {
  await connect();
  queueSend(convForUser(PEER), 'text', 'hello');
  const [first] = sentFrames('send');
  dropConnection();
  await connect();
  const sends = sentFrames('send');
  assert.equal(sends.length, 2);
  assert.deepEqual(ids(sends), [first.client_msg_id, first.client_msg_id]);
  assert.deepEqual(sends[1], first, 'the very same frame');
  FakeWebSocket.last.deliver(ack(first, 1));
  assert.deepEqual(S.outbox, []);
  assert.deepEqual(stored(), []);
  dropConnection();
  await connect();
  assert.equal(sentFrames('send').length, 2);
});

test('an ack overdue while connected: resent with the same id; a fresh send is left alone', async () => {
  await connect();
  queueSend(convForUser(PEER), 'text', 'slow ack');
  resendOverdue();
  assert.equal(sentFrames('send').length, 1, 'sent a moment ago: not overdue');
  S.outbox[0].sentAt = Date.now() - 9000;
  resendOverdue();
  const sends = sentFrames('send');
  assert.equal(sends.length, 2);
  assert.equal(sends[1].client_msg_id, sends[0].client_msg_id);
});

test('a reload restores the pending sends with their ids and conversations, and sends them', async () => {
  queueSend(convForUser(PEER), 'text', 'before the reload');
  const id = S.outbox[0].client_msg_id;
  // What a reload leaves: localStorage only.
  S.outbox = [];
  S.convs.clear();
  loadOutbox();
  assert.deepEqual(ids(S.outbox), [id]);
  assert.equal(S.outbox[0].frame.content, 'before the reload');
  assert.equal(S.convs.get(convForUser(PEER).cid).peer_user_id, PEER);
  await connect();
  assert.deepEqual(ids(sentFrames('send')), [id]);
});

test('my message found in a pull (its ack lost) ends the pending send', async () => {
  const c = await openChat(message(1));
  await connect();
  queueSend(c, 'text', 'acked but the ack was lost');
  const [send] = sentFrames('send');
  dropConnection();
  server.store(message(2, ME, { client_msg_id: send.client_msg_id, content: send.content }));
  await connect();
  await until(() => S.outbox.length === 0, 'the stored copy to end the send');
  assert.equal(c.msgs.get(2).client_msg_id, send.client_msg_id);
});

test('a refused send stays failed (not resent) until retried with its id; delete drops it', async () => {
  await connect();
  queueSend(convForUser(PEER), 'text', 'not allowed');
  const [send] = sentFrames('send');
  FakeWebSocket.last.deliver({ type: 'error', code: 'forbidden', message: 'Not friends', client_msg_id: send.client_msg_id });
  assert.equal(S.outbox[0].status, 'failed');
  assert.equal(S.outbox[0].error, 'Not friends');
  assert.equal(stored()[0].status, 'failed', 'the failure survives a reload');
  dropConnection();
  await connect();
  assert.equal(sentFrames('send').length, 1, 'a failed send is not flushed');
  retrySend(send.client_msg_id);
  assert.deepEqual(ids(sentFrames('send')), [send.client_msg_id, send.client_msg_id]);
  assert.equal(S.outbox[0].status, 'pending');
  discardSend(send.client_msg_id);
  assert.deepEqual(S.outbox, []);
  assert.deepEqual(stored(), []);
});

test('a rate-limited send stays pending and is sent again, same id', async () => {
  await connect();
  queueSend(convForUser(PEER), 'text', 'too fast');
  const [send] = sentFrames('send');
  FakeWebSocket.last.deliver({ type: 'error', code: 'rate_limited', message: 'slow down', client_msg_id: send.client_msg_id });
  assert.equal(S.outbox[0].status, 'pending');
  await until(() => sentFrames('send').length === 2, 'the retry after the back-off');
  assert.equal(sentFrames('send')[1].client_msg_id, send.client_msg_id);
});
