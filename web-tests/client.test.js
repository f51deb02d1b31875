// The GoChat web client in a real browser (the system Chromium through
// playwright-core), against a standalone server started on free ports with a
// fresh data dir (world.js). One story in five acts, a file for each theme:
// three people sign up, chat 1:1 and in a group, use the shell around the
// chats, and go through a lost frame, a kick, a server restart and a reload
// while offline, with a short act on editing and recalling messages after
// the 1:1 chat. The acts build on each other (the people, their pages and
// chats carry over), so this file runs them in this order, in one process,
// sharing one server and one browser; an act file alone is not a test run.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { watch } from './world.js';
import './auth.steps.js';
import './direct-chat.steps.js';
import './changes.steps.js';
import './groups.steps.js';
import './search.steps.js';
import './conv-settings.steps.js';
import './screens.steps.js';
import './connection.steps.js';

test('no console errors or page errors in any page', () => {
  assert.deepEqual(watch.errors, []);
});
