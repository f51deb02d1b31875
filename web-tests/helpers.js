// Test helpers: a standalone GoChat server on free ports, the system Chromium,
// pages that fail the run on console errors, a tiny PNG encoder, and the steps
// the acts take in the client (send a message, add a friend, wait for the
// socket, take a screenshot).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const OUT = path.join(ROOT, 'target', 'web-test');
export const SHOTS = path.join(OUT, 'screenshots');

/** A port nobody listens on right now (bind 0, read it, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function tcpOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/** `gochat standalone` with a data dir and fixed ports, restartable. */
export class Server {
  constructor({ bin, dataDir, httpPort, wsPort, logFile }) {
    Object.assign(this, { bin, dataDir, httpPort, wsPort, logFile });
    this.proc = null;
  }

  get base() { return `http://127.0.0.1:${this.httpPort}`; }

  async start(timeoutMs = 30000) {
    const log = fs.openSync(this.logFile, 'a');
    fs.writeSync(log, `\n===== start ${new Date().toISOString()} =====\n`);
    this.proc = spawn(this.bin, [
      'standalone',
      '--data-dir', this.dataDir,
      '--http-addr', `127.0.0.1:${this.httpPort}`,
      '--ws-addr', `127.0.0.1:${this.wsPort}`,
    ], { stdio: ['ignore', log, log], env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' } });
    fs.closeSync(log);
    const proc = this.proc;
    let exited = null;
    proc.once('exit', (code, signal) => { exited = { code, signal }; });
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (exited) throw new Error(`gochat exited at start (${JSON.stringify(exited)}); see ${this.logFile}`);
      try {
        const res = await fetch(`${this.base}/readyz`);
        if (res.ok && await tcpOpen(this.wsPort)) return;
      } catch { /* not yet */ }
      await sleep(100);
    }
    throw new Error(`gochat did not become ready in ${timeoutMs} ms; see ${this.logFile}`);
  }

  /** SIGTERM and wait for the process to drain and exit. */
  async stop(timeoutMs = 20000) {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const done = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    await done;
    clearTimeout(timer);
    this.proc = null;
  }
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/**
 * Watches a page for console errors and page errors. Errors expected by a step
 * (a deliberate wrong password, the planned server outage) are allowed only
 * while that step runs, and only if they match its patterns.
 */
export class ErrorWatch {
  constructor() {
    this.errors = [];
    this.allowed = [];
  }

  attach(page, label) {
    page.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      const text = msg.text();
      if (this.allowed.some((re) => re.test(text))) return;
      this.errors.push(`[${label}] console: ${text}`);
    });
    page.on('pageerror', (err) => this.errors.push(`[${label}] page error: ${err.message}`));
  }

  async allowDuring(patterns, fn) {
    this.allowed.push(...patterns);
    try {
      return await fn();
    } finally {
      this.allowed = this.allowed.filter((re) => !patterns.includes(re));
    }
  }
}

function crc32(buf) {
  let crc = 0xffffffff;
  for (const b of buf) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** An RGB PNG of a diagonal gradient, `w` x `h`. */
export function makePng(w, h, [r0, g0, b0] = [79, 70, 229], [r1, g1, b1] = [236, 72, 153]) {
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    const row = y * (w * 3 + 1);
    raw[row] = 0;
    for (let x = 0; x < w; x++) {
      const t = (x / w + y / h) / 2;
      const o = row + 1 + x * 3;
      raw[o] = Math.round(r0 + (r1 - r0) * t);
      raw[o + 1] = Math.round(g0 + (g1 - g0) * t);
      raw[o + 2] = Math.round(b0 + (b1 - b0) * t);
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; ihdr[9] = 2; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

// ---------- steps in the client ----------

export const tid = (page, id) => page.getByTestId(id);

export async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

export async function waitConnected(page) {
  await page.waitForFunction(() => window.gochat && window.gochat.socket.state === 'open');
}

export async function waitFor(fn, what, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Adds a friend through the Add friend dialog; `outcome` is what the
 * result row should say: 'friend-added' (friends now) or 'friend-requested'. */
export async function addFriend(page, username, outcome = 'friend-added') {
  await tid(page, 'plus-button').click();
  await tid(page, 'menu-add-friend').click();
  await tid(page, 'add-query').fill(username);
  await tid(page, 'add-search').click();
  const row = page.locator(`[data-testid="user-result"][data-username="${username}"]`);
  await row.getByTestId('add-friend-button').click();
  await row.getByTestId(outcome).waitFor();
  if (username === 'carol') await shot(page, '13-add-friend');
  await page.keyboard.press('Escape');
  await tid(page, 'dialog-add').waitFor({ state: 'hidden' });
}

export function convItem(page, name) {
  return page.locator(`[data-testid="conv-item"][data-name="${name}"]`);
}

export async function send(page, text) {
  const input = tid(page, 'composer-input');
  await input.fill(text);
  await input.press('Enter');
}

/** Texts of the text bubbles in the open chat, top to bottom. */
export async function bubbleTexts(page) {
  return page.locator('[data-testid="message"] [data-testid="message-text"]').allInnerTexts();
}
