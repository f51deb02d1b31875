// Layer 2 (services): the session's one REST client and one WebSocket, which
// the other services talk through. The socket URL comes from the server's
// /client/config because the WebSocket listener (the edge) is not the one that
// served this page.

import { Api, Socket } from './net.js';
import { uuid } from './util.js';
import { S } from './store.js';

export const api = new Api('/api/v1');
export const sock = new Socket(wsUrl);

let wsConfig = null;
async function wsUrl() {
  if (!wsConfig) {
    try {
      wsConfig = await api.get('/client/config');
    } catch (e) {
      if (e.status === 404) {
        const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
        wsConfig = { ws_url: `${proto}//${location.hostname}:8090/ws` };
      } else {
        throw e;
      }
    }
  }
  let base = wsConfig.ws_url;
  if (base.startsWith('/')) base = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${base}`;
  const u = new URL(base);
  u.searchParams.set('token', S.session.token);
  u.searchParams.set('device_id', deviceId());
  return u.href;
}

/** One device per tab, so two tabs of one browser do not replace each other. */
function deviceId() {
  let id = sessionStorage.getItem('gochat.device');
  if (!id) {
    id = `web-${uuid().slice(0, 8)}`;
    sessionStorage.setItem('gochat.device', id);
  }
  return id;
}
