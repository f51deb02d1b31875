// store.js alone: topics reach their subscribers, lookups that meet an unknown
// id ask for it (once per new conversation), and a 1:1 chat's id is the
// protocol's md5 of the two user ids in numeric order.

import { beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  changed, convForGroup, convForUser, convOfMessage, ensureConv, isVisible, mentionsMe, onlineOf,
  publish, S, setChatPaneProbe, subscribe, userName,
} from '../../control/web/store.js';

beforeEach(() => {
  S.me = { user_id: '10' };
  S.users.clear();
  S.convs.clear();
  S.current = null;
  S.conn = 'open';
  setChatPaneProbe(() => true);
});

/** Every `need` published while fn runs. */
function needsDuring(fn) {
  const seen = [];
  const stop = subscribe('need', (kind, id) => seen.push(`${kind} ${id}`));
  try { fn(); } finally { stop(); }
  return seen;
}

test('a topic reaches each subscriber with its arguments, until it unsubscribes', () => {
  const a = [];
  const b = [];
  const stopA = subscribe('kicked', (reason) => a.push(reason));
  const stopB = subscribe('kicked', (reason) => b.push(reason));
  publish('kicked', 'one');
  stopA();
  publish('kicked', 'two');
  stopB();
  publish('kicked', 'three');
  assert.deepEqual(a, ['one']);
  assert.deepEqual(b, ['one', 'two']);
});

test('changed() is the change topic; a misspelt topic throws instead of going nowhere', () => {
  let redraws = 0;
  const stop = subscribe('change', () => { redraws += 1; });
  changed();
  changed();
  stop();
  assert.equal(redraws, 2);
  assert.throws(() => publish('chnage'), /no such topic/);
  assert.throws(() => subscribe('chnage', () => {}), /no such topic/);
});

test('the 1:1 conversation id is md5 of "min:max" in numeric order, the same from both sides', () => {
  const expected = createHash('md5').update('9:10').digest('hex');
  assert.equal(convForUser('9').cid, expected, 'numeric order: 9 before 10');
  S.me = { user_id: '9' };
  assert.equal(convForUser('10').cid, expected);
});

test('a conversation is made once per id, and asks once for its group or its peer', () => {
  let g;
  const first = needsDuring(() => { g = convForGroup('5'); });
  assert.deepEqual(first, ['group 5']);
  assert.equal(g.cid, 'g5');
  assert.equal(g.type, 'group');
  const again = needsDuring(() => assert.equal(ensureConv('g5'), g));
  assert.deepEqual(again, []);
  const peer = needsDuring(() => convForUser('11'));
  assert.deepEqual(peer, ['user 11']);
});

test('a message lands in the conversation with the other side, whoever sent it', () => {
  const cid = convForUser('11').cid;
  const mine = convOfMessage({ conversation_id: cid, from_user_id: '10', to_user_id: '11' });
  const theirs = convOfMessage({ conversation_id: cid, from_user_id: '11', to_user_id: '10' });
  assert.equal(mine, theirs);
  assert.equal(mine.peer_user_id, '11');
  const group = convOfMessage({ conversation_id: 'g7', group_id: '7', from_user_id: '11' });
  assert.equal(group.type, 'group');
  assert.equal(group.group_id, '7');
});

test('names: System for user 0, the nickname before the username, a placeholder that asks', () => {
  S.users.set('11', { user_id: '11', username: 'bob', nickname: 'Bobby' });
  S.users.set('12', { user_id: '12', username: 'carol', nickname: '' });
  assert.equal(userName('0'), 'System');
  assert.equal(userName('11'), 'Bobby');
  assert.equal(userName('12'), 'carol');
  let name;
  assert.deepEqual(needsDuring(() => { name = userName('13'); }), ['user 13']);
  assert.equal(name, 'User 13');
});

test('visible only when it is the open conversation and the shell says the pane is seen', () => {
  const c = convForUser('11');
  assert.equal(isVisible(c), false, 'not the open one');
  S.current = c.cid;
  assert.equal(isVisible(c), true);
  setChatPaneProbe(() => false);
  assert.equal(isVisible(c), false, 'page hidden, or the phone shows the list');
});

test('online state is unknown while we are offline ourselves', () => {
  S.users.set('11', { user_id: '11', online: true });
  assert.equal(onlineOf('11'), true);
  assert.equal(onlineOf('12'), undefined);
  S.conn = 'offline';
  assert.equal(onlineOf('11'), undefined);
});

test('a message mentions me by my id or by @all', () => {
  assert.equal(mentionsMe({ mentions: ['10'] }), true);
  assert.equal(mentionsMe({ mentions: ['all'] }), true);
  assert.equal(mentionsMe({ mentions: ['11'] }), false);
  assert.equal(mentionsMe({}), false);
});
