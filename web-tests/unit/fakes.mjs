// What the client's lower layers need from a browser, faked for Node so that
// the real modules of control/web run here unchanged: a WebSocket whose
// server side the test drives, `fetch` answered by a small in-memory GoChat
// (stored messages paged like the real API), and localStorage. They are
// installed as globals, as a browser has them; the modules read them only
// when called, so the order of imports does not matter.

export class FakeWebSocket {
  static OPEN = 1;
  static opened = []; // every socket the client made, oldest first

  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeWebSocket.opened.push(this);
  }

  static get last() {
    return FakeWebSocket.opened[FakeWebSocket.opened.length - 1];
  }

  send(data) {
    if (this.readyState !== FakeWebSocket.OPEN) throw new Error('send on a socket that is not open');
    this.sent.push(JSON.parse(data));
  }

  close() {
    this.readyState = 3;
  }

  // ---- the server's side ----

  accept() {
    this.readyState = FakeWebSocket.OPEN;
    this.onopen();
  }

  deliver(frame) {
    this.onmessage({ data: JSON.stringify(frame) });
  }

  drop(code = 1006) {
    this.readyState = 3;
    this.onclose({ code, reason: '' });
  }
}

/** Every frame of `type` the client sent, over all its sockets. */
export function sentFrames(type) {
  return FakeWebSocket.opened.flatMap((ws) => ws.sent).filter((f) => f.type === type);
}

class MemoryStorage {
  constructor() { this.items = new Map(); }
  getItem(k) { return this.items.has(k) ? this.items.get(k) : null; }
  setItem(k, v) { this.items.set(k, String(v)); }
  removeItem(k) { this.items.delete(k); }
  clear() { this.items.clear(); }
}

function json(status, body) {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

/** The REST API as far as the history and the conversation list go. */
export class FakeServer {
  constructor() {
    this.reset();
  }

  reset() {
    this.messages = new Map(); // cid -> messages by seq
    this.conversations = []; // what GET /conversations answers
    this.requests = []; // "GET /path?query", in order
  }

  store(...msgs) {
    for (const m of msgs) {
      const list = this.messages.get(m.conversation_id) || [];
      list.push(m);
      list.sort((a, b) => a.seq_id - b.seq_id);
      this.messages.set(m.conversation_id, list);
    }
  }

  async fetch(url, init = {}) {
    const u = new URL(url, 'http://gochat.test');
    const path = u.pathname.replace(/^\/api\/v1/, '');
    this.requests.push(`${init.method || 'GET'} ${path}${u.search}`);
    const history = /^\/conversations\/([^/]+)\/messages$/.exec(path);
    if (history) return json(200, this.page(decodeURIComponent(history[1]), u.searchParams));
    if (path === '/conversations') return json(200, { conversations: this.conversations });
    return json(404, { error: { code: 'not_found', message: 'no such endpoint' } });
  }

  page(cid, q) {
    const all = this.messages.get(cid) || [];
    const limit = Number(q.get('limit'));
    if (q.has('after_seq')) {
      const after = all.filter((m) => m.seq_id > Number(q.get('after_seq')));
      return { messages: after.slice(0, limit), has_more: after.length > limit };
    }
    const before = all.filter((m) => m.seq_id < Number(q.get('before_seq')));
    return { messages: before.slice(-limit), has_more: before.length > limit };
  }

  /** The history requests made so far, e.g. "after_seq=2". */
  pulls(cid) {
    const prefix = `GET /conversations/${cid}/messages?`;
    return this.requests.filter((r) => r.startsWith(prefix)).map((r) => r.slice(prefix.length).replace(/&limit=\d+$/, ''));
  }
}

export function installFakes() {
  const server = new FakeServer();
  globalThis.WebSocket = FakeWebSocket;
  globalThis.localStorage = new MemoryStorage();
  globalThis.fetch = (url, init) => server.fetch(url, init);
  return server;
}

/** Waits until `cond()` holds (the client works through promises and timers). */
export async function until(cond, what = 'the condition', ms = 4000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
