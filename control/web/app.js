// Layer 4 (shell): the entry module. GoChat's web client speaks only the public
// protocol (docs/protocol.md): REST under /api/v1 and one WebSocket, like any
// third-party client. Modules import downward only (0 utilities, 1 the store,
// 2 services, 3 views, 4 this wiring; the table is web-tests/check-imports.mjs,
// which also fails on any cycle), so news travels upward through the store's
// topics: here, in one place, each topic is routed to what answers it, the
// clocks are started and everything is wired up.

import { $, isPhone } from './util.js';
import { S, subscribe } from './store.js';
import { fetchMissing } from './loaders.js';
import { resendOverdue } from './outbox.js';
import { resumeSession } from './session.js';
import { expireTyping, wireSync } from './sync.js';
import { sock } from './transport.js';
import { showAuth, wireAuth } from './auth.js';
import { wireChat } from './chat.js';
import { wireMessageMenu } from './message-menu.js';
import { restoreDraft, saveDraft, wireComposer } from './composer.js';
import { closePopovers, wireDialogs } from './dialogs.js';
import { wireGroupDialogs } from './group-dialogs.js';
import { loadDetails, renderInfo } from './info-panel.js';
import { wirePeople } from './people.js';
import { renderMe, wireProfile } from './profile.js';
import { noticeFriend, noticeRequest } from './requests.js';
import { announce, applyTheme, wireSettings } from './settings.js';
import { render, showKicked, showMainScreen, wireShell } from './shell.js';

function routeTopics() {
  subscribe('change', render);
  subscribe('need', fetchMissing);
  subscribe('details', () => { if (S.infoOpen) renderInfo(); });
  subscribe('signed-in', () => { showMainScreen(); renderMe(); });
  subscribe('signed-out', (flash) => showAuth('login', flash));
  subscribe('conv-opened', (previous) => {
    saveDraft(previous);
    if (previous !== S.current) {
      loadDetails();
      renderInfo();
      closePopovers();
      restoreDraft();
    }
    if (!isPhone()) setTimeout(() => $('#composer-input').focus(), 0);
  });
  subscribe('incoming', announce);
  subscribe('kicked', showKicked);
  subscribe('friend-request', noticeRequest);
  subscribe('friend-added', noticeFriend);
}

function start() {
  routeTopics();
  wireSync();
  setInterval(expireTyping, 1000);
  setInterval(resendOverdue, 3000);
  applyTheme();
  wireAuth();
  wireShell();
  wireChat();
  wireMessageMenu();
  wireComposer();
  wireDialogs();
  wirePeople();
  wireGroupDialogs();
  wireProfile();
  wireSettings();
  resumeSession();
}

// Exposed for the browser tests and for poking around in the console.
window.gochat = { state: S, socket: sock };

start();
