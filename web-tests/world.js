// The world the acts share (client.test.js runs them in order, in one process):
// one standalone server on free ports with a fresh data dir, one browser, the
// watch on every page's console, and the people. Acts build on each other:
// `users` carries the people's pages, ids and tokens, and what one act leaves
// for a later one (the id of Alice and Bob's chat).

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  ROOT, OUT, SHOTS, Server, ErrorWatch, freePort, launchBrowser,
} from './helpers.js';

const BIN = process.env.GOCHAT_BIN || path.join(ROOT, 'target', 'debug', 'gochat');
export const PASSWORD = 'correct-horse-1';
const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

export const watch = new ErrorWatch();
export const users = {}; // name -> {context, page, id, token}; cidAB: Alice and Bob's chat
export let server;
let dataDir;
let browser;

before(async () => {
  assert.ok(fs.existsSync(BIN), `${BIN} is missing: cargo build --bin gochat`);
  fs.mkdirSync(SHOTS, { recursive: true });
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gochat-web-'));
  server = new Server({
    bin: BIN,
    dataDir,
    httpPort: await freePort(),
    wsPort: await freePort(),
    logFile: path.join(OUT, 'server.log'),
  });
  fs.writeFileSync(server.logFile, '');
  await server.start();
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

/** A person's own browser context, with the client open. */
export async function newUserPage(name, viewport = DESKTOP) {
  const context = await browser.newContext({ viewport, locale: 'en-US', timezoneId: 'UTC' });
  const page = await context.newPage();
  watch.attach(page, name);
  await page.goto(server.base + '/');
  return { context, page };
}

export async function rest(token, method, urlPath, body) {
  const res = await fetch(`${server.base}/api/v1${urlPath}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

export async function serverConv(user, cid) {
  const res = await rest(user.token, 'GET', '/conversations');
  return (res.body.conversations || []).find((c) => c.conversation_id === cid);
}
