// Layer 0 (utilities): the two ways the client talks to GoChat
// (docs/protocol.md), REST under /api/v1 and one WebSocket. Nothing here knows
// about the UI or the app's state: transport.js makes the session's instances.

/** An error from the REST API (or the network, with status 0). */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export class Api {
  constructor(base = '/api/v1') {
    this.base = base;
    this.token = null;
    /** Called once per 401 on an authenticated call (the token is dead). */
    this.onUnauthorized = null;
  }

  async request(method, path, body) {
    const headers = {};
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    let payload;
    if (body instanceof FormData) {
      payload = body;
    } else if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(this.base + path, { method, headers, body: payload, cache: 'no-store' });
    } catch {
      throw new ApiError(0, 'network', 'Cannot reach the server. Check your connection.');
    }
    const text = res.status === 204 ? '' : await res.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch { data = null; }
    }
    if (!res.ok) {
      const err = (data && data.error) || {};
      const message = err.message || res.statusText || `HTTP ${res.status}`;
      const e = new ApiError(res.status, err.code || `http_${res.status}`, message);
      if (res.status === 401 && headers.Authorization && this.onUnauthorized) this.onUnauthorized(e);
      throw e;
    }
    return data;
  }

  get(path) { return this.request('GET', path); }
  post(path, body) { return this.request('POST', path, body === undefined ? {} : body); }
  patch(path, body) { return this.request('PATCH', path, body); }
  put(path, body) { return this.request('PUT', path, body); }
  del(path) { return this.request('DELETE', path); }
}

/**
 * One WebSocket that stays up: reconnects with jittered exponential backoff,
 * sends a ping every 20 s and treats 50 s of silence as a dead link. A `kick`
 * frame stops it for good (until start() is called again).
 *
 * Events (callbacks): onFrame(frame), onState(state, detail) where state is
 * 'connecting' | 'open' | 'offline' | 'kicked' | 'stopped', onOpenFailed(count).
 */
export class Socket {
  constructor(urlProvider) {
    this.urlProvider = urlProvider;
    this.ws = null;
    this.state = 'stopped';
    this.failures = 0;
    this.timer = null;
    this.heartbeat = null;
    this.lastReceived = 0;
    this.onFrame = () => {};
    this.onState = () => {};
    this.onOpenFailed = () => {};
    this.baseDelay = 500;
    this.maxDelay = 8000;
  }

  get isOpen() { return this.state === 'open' && this.ws && this.ws.readyState === WebSocket.OPEN; }

  start() {
    this.stopped = false;
    this.kicked = false;
    this.failures = 0;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.stopHeartbeat();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onclose = null;
      try { ws.close(1000, 'bye'); } catch { /* already closed */ }
    }
    this.setState('stopped');
  }

  /** Skips the current backoff wait (e.g. the browser says it is back online). */
  reconnectNow() {
    if (this.stopped || this.kicked || this.ws) return;
    clearTimeout(this.timer);
    this.connect();
  }

  send(frame) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  setState(state, detail) {
    this.state = state;
    this.onState(state, detail);
  }

  async connect() {
    clearTimeout(this.timer);
    if (this.stopped || this.kicked) return;
    this.setState('connecting');
    let url;
    try {
      url = await this.urlProvider();
    } catch {
      this.scheduleReconnect(false);
      return;
    }
    if (this.stopped || this.kicked) return;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      this.scheduleReconnect(false);
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.failures = 0;
      this.lastReceived = Date.now();
      this.startHeartbeat();
      this.setState('open');
    };
    ws.onmessage = (ev) => {
      this.lastReceived = Date.now();
      let frame;
      try { frame = JSON.parse(ev.data); } catch { return; }
      if (!frame || typeof frame.type !== 'string') return;
      if (frame.type === 'kick') this.kicked = true;
      this.onFrame(frame);
    };
    ws.onerror = () => { /* onclose follows and decides */ };
    ws.onclose = (ev) => {
      if (this.ws === ws) this.ws = null;
      this.stopHeartbeat();
      if (this.stopped) return;
      if (this.kicked) {
        this.setState('kicked');
        return;
      }
      this.setState('offline', { code: ev.code, reason: ev.reason });
      this.scheduleReconnect(opened, ev.code);
    };
  }

  scheduleReconnect(wasOpen, code) {
    if (this.stopped || this.kicked) return;
    if (!wasOpen) {
      this.failures += 1;
      this.onOpenFailed(this.failures);
    }
    // Full jitter on an exponential ceiling: after a server restart thousands of
    // clients must not come back in the same millisecond.
    const ceiling = Math.min(this.maxDelay, this.baseDelay * 2 ** Math.min(this.failures, 10));
    let delay = ceiling / 2 + Math.random() * (ceiling / 2);
    // A 1013 is the server asking to come back later (draining or overloaded).
    if (code === 1013) delay = Math.max(delay, 300 + Math.random() * 1200);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  startHeartbeat() {
    this.stopHeartbeat();
    this.heartbeat = setInterval(() => {
      if (!this.ws) return;
      if (Date.now() - this.lastReceived > 50000) {
        // Nothing at all (not even a pong) for 50 s: the link is dead. Do not
        // wait for a close handshake that will never come.
        const ws = this.ws;
        ws.onclose = null;
        this.ws = null;
        try { ws.close(4000, 'heartbeat timeout'); } catch { /* closed */ }
        this.stopHeartbeat();
        this.setState('offline', { code: 4000, reason: 'heartbeat timeout' });
        this.scheduleReconnect(true);
        return;
      }
      this.send({ type: 'ping' });
    }, 20000);
  }

  stopHeartbeat() {
    clearInterval(this.heartbeat);
    this.heartbeat = null;
  }
}
