// The client's real lower layers (store, services) wired as app.js wires
// them, against the fakes: one signed-in user, a socket the test opens and
// drops, and the in-memory server. Each test starts from signIn().

import { FakeWebSocket, installFakes, until } from './fakes.mjs';
import { refreshConversations } from '../../control/web/conversations.js';
import { loadLatest } from '../../control/web/history.js';
import { convForUser, S } from '../../control/web/store.js';
import { wireSync } from '../../control/web/sync.js';
import { sock } from '../../control/web/transport.js';

export const ME = '1';
export const PEER = '2';
export const server = installFakes();

wireSync();
// Where to connect is the server's answer in a browser (/client/config plus a
// per-tab device id); here there is only the fake.
sock.urlProvider = async () => 'ws://gochat.test/ws';

export function signIn() {
  sock.stop();
  server.reset();
  localStorage.clear();
  FakeWebSocket.opened.length = 0;
  Object.assign(S, {
    session: { token: 't', user_id: ME },
    me: { user_id: ME, username: 'me' },
    current: null,
    outbox: [],
    everConnected: false,
  });
  for (const m of [S.users, S.convs, S.pendingReads, S.typing]) m.clear();
}

/** Opens a socket and lets the client finish what it does on connecting. */
export async function connect() {
  const before = FakeWebSocket.opened.length;
  const groupLoads = () => server.requests.filter((r) => r === 'GET /groups').length;
  const loads = groupLoads();
  sock.start();
  await until(() => FakeWebSocket.opened.length > before, 'the client to open a socket');
  FakeWebSocket.last.accept();
  // Loading the group list is the last thing the client does after a connect.
  await until(() => groupLoads() > loads, 'the client to sync after connecting');
}

export function dropConnection() {
  FakeWebSocket.last.drop();
}

/** A text message of the 1:1 chat between ME and PEER, as the server stores it. */
export function message(seq, from = PEER, extra = {}) {
  const cid = convForUser(PEER).cid;
  return {
    message_id: String(1000 + seq),
    conversation_id: cid,
    seq_id: seq,
    from_user_id: from,
    to_user_id: from === ME ? PEER : ME,
    message_type: 'text',
    content: `message ${seq}`,
    metadata: {},
    mentions: [],
    timestamp: 1700000000000 + seq,
    ...extra,
  };
}

/** The 1:1 chat with `stored` on the server, listed and opened as the app does. */
export async function openChat(...stored) {
  const c = convForUser(PEER);
  server.store(...stored);
  const last = stored.length ? stored[stored.length - 1].seq_id : 0;
  server.conversations = [{ conversation_id: c.cid, type: 'single', peer_user_id: PEER, last_seq_id: last, read_seq_id: 0, unread: stored.length }];
  await refreshConversations();
  await loadLatest(c);
  return c;
}

export const seqs = (c) => [...c.msgs.keys()].sort((a, b) => a - b);
