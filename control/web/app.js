// GoChat web client, the entry module. Speaks only the public protocol
// (PROTOCOL.md): REST under /api/v1 and one WebSocket, like any third-party
// client. Each module owns one part of the UI or of the sync logic (its first
// lines say which); this one wires them up and starts.

import { wireAuth } from './auth.js';
import { wireChat } from './chat.js';
import { buildEmojiPicker, wireComposer } from './composer.js';
import { wireDialogs } from './dialogs.js';
import { wireGroupDialogs } from './group-dialogs.js';
import { wirePeople } from './people.js';
import { wireProfile } from './profile.js';
import { resumeSession, sock, wireSession } from './session.js';
import { applyTheme, wireSettings } from './settings.js';
import { wireShell } from './shell.js';
import { S } from './store.js';
import { wireSync } from './sync.js';

function start() {
  wireSync();
  applyTheme();
  wireAuth();
  wireShell();
  wireChat();
  wireComposer();
  wireDialogs();
  wireSession();
  wirePeople();
  wireGroupDialogs();
  wireProfile();
  wireSettings();
  buildEmojiPicker();
  resumeSession();
}

// Exposed for the browser tests and for poking around in the console.
window.gochat = { state: S, socket: sock };

start();
