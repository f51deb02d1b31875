// sync.js with the history it feeds (history.js, conversations.js): frames
// from the socket merge into each conversation by seq_id, with no duplicate
// whichever way a message comes (frame, repeat, pull, ack), and a hole in the
// seqs is pulled from the server.

import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeWebSocket, sentFrames, until } from './fakes.mjs';
import { connect, message, ME, openChat, PEER, seqs, server, signIn } from './client.mjs';
import { queueSend } from '../../control/web/outbox.js';
import { S, subscribe } from '../../control/web/store.js';
import { sock } from '../../control/web/transport.js';

beforeEach(signIn);
afterEach(() => sock.stop());

const frame = (m) => ({ type: 'message', ...m });

test('frames and a repeated frame of one message merge into one, in seq order', async () => {
  const c = await openChat(message(1), message(2));
  await connect();
  const ws = FakeWebSocket.last;
  ws.deliver(frame(message(3)));
  ws.deliver(frame(message(3)));
  ws.deliver(frame(message(4)));
  assert.deepEqual(seqs(c), [1, 2, 3, 4]);
  assert.equal(c.maxSeq, 4);
  assert.equal(c.last_message.seq_id, 4);
  assert.equal(c.unread, 2 + 2, 'the two listed unread and the two new ones, the repeat not counted');
});

test('after a reconnect, what was stored while the link was down is pulled', async () => {
  const c = await openChat(message(1), message(2));
  await connect();
  FakeWebSocket.last.drop();
  server.store(message(3), message(4));
  await connect();
  assert.equal(server.pulls(c.cid).at(-1), 'after_seq=2');
  assert.deepEqual(seqs(c), [1, 2, 3, 4]);
});

test('a frame beyond the next expected seq pulls the gap, and only then', async () => {
  const c = await openChat(message(1), message(2));
  await connect();
  const pullsBefore = server.pulls(c.cid).length;
  FakeWebSocket.last.deliver(frame(message(3)));
  assert.equal(server.pulls(c.cid).length, pullsBefore, 'seq 3 follows 2: nothing to pull');
  server.store(message(4), message(5), message(6));
  FakeWebSocket.last.deliver(frame(message(6)));
  await until(() => c.maxSeq === 6, 'the gap to be filled');
  assert.equal(server.pulls(c.cid).at(-1), 'after_seq=3');
  assert.deepEqual(seqs(c), [1, 2, 3, 4, 5, 6], 'the pulled copy of 6 did not add a second one');
});

test('messages for a conversation not yet opened are kept live and the list is updated', async () => {
  await connect();
  const m = message(7);
  FakeWebSocket.last.deliver(frame(m));
  const c = S.convs.get(m.conversation_id);
  assert.equal(c.peer_user_id, PEER);
  assert.equal(c.last_seq_id, 7);
  assert.equal(c.unread, 1);
  assert.deepEqual(seqs(c), [7]);
  assert.deepEqual(server.pulls(c.cid), [], 'an unopened conversation is not pulled');
});

test('an ack puts my send in its place by seq and ends it in the outbox', async () => {
  const c = await openChat(message(1));
  await connect();
  queueSend(c, 'text', 'hello');
  const [send] = sentFrames('send');
  assert.equal(send.to_user_id, PEER);
  FakeWebSocket.last.deliver({
    type: 'ack', client_msg_id: send.client_msg_id, message_id: '77', conversation_id: c.cid, seq_id: 2, timestamp: 1,
  });
  assert.deepEqual(S.outbox, []);
  const stored = c.msgs.get(2);
  assert.equal(stored.client_msg_id, send.client_msg_id);
  assert.equal(stored.from_user_id, ME);
  assert.equal(stored.content, 'hello');
  assert.equal(c.unread, 1, 'my own message is not unread');
  // The server may ack a resend again: the second ack changes nothing.
  FakeWebSocket.last.deliver({
    type: 'ack', client_msg_id: send.client_msg_id, message_id: '77', conversation_id: c.cid, seq_id: 2, timestamp: 1,
  });
  assert.deepEqual(seqs(c), [1, 2]);
});

test('read frames: the peer\'s moves the Read mark, mine from another device clears the unread count', async () => {
  const c = await openChat(message(1), message(2));
  await connect();
  assert.equal(c.unread, 2);
  FakeWebSocket.last.deliver({ type: 'read', conversation_id: c.cid, user_id: PEER, seq_id: 1 });
  assert.equal(c.peerRead, 1);
  assert.equal(c.unread, 2);
  FakeWebSocket.last.deliver({ type: 'read', conversation_id: c.cid, user_id: ME, seq_id: 2 });
  assert.equal(c.unread, 0);
  assert.equal(c.read_seq_id, 2);
});

test('a kick is published with its reason, and the socket stays down', async () => {
  await connect();
  const reasons = [];
  const stop = subscribe('kicked', (reason) => reasons.push(reason));
  FakeWebSocket.last.deliver({ type: 'kick', reason: 'signed in elsewhere' });
  FakeWebSocket.last.drop(4001);
  stop();
  assert.deepEqual(reasons, ['signed in elsewhere']);
  assert.equal(S.conn, 'kicked');
});
