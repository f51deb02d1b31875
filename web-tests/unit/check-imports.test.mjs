// The layering check itself: it passes the client as it is, and it fails each
// way a module folder can break the layers (a made-up folder per case).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkImports } from '../check-imports.mjs';

const CLIENT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'control', 'web');
const NAMES = ['utilities', 'store', 'services', 'views', 'shell'];

/** A folder of modules, {name: [layer, imports...]}, with their headers. */
function folder(modules) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gochat-layers-'));
  for (const [name, [layer, ...imports]] of Object.entries(modules)) {
    const lines = [`// Layer ${layer} (${NAMES[layer]}): ${name}.`, ''];
    for (const i of imports) lines.push(`import { x } from './${i}';`);
    fs.writeFileSync(path.join(dir, name), `${lines.join('\n')}\n`);
  }
  return dir;
}

function check(modules, layers) {
  const dir = folder(modules);
  try {
    return checkImports(dir, layers, 'app.js');
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
}

test('the web client as it is passes', () => {
  assert.deepEqual(checkImports(CLIENT), []);
});

test('well-layered modules pass, imports within a layer included', () => {
  const layers = [['util.js'], ['store.js'], ['a.js', 'b.js'], [], ['app.js']];
  assert.deepEqual(check({
    'util.js': [0], 'store.js': [1, 'util.js'], 'a.js': [2, 'b.js', 'store.js'], 'b.js': [2], 'app.js': [4, 'a.js'],
  }, layers), []);
});

test('an upward import fails', () => {
  const layers = [['util.js'], ['store.js'], [], [], ['app.js']];
  const problems = check({ 'util.js': [0], 'store.js': [1, 'app.js'], 'app.js': [4, 'store.js', 'util.js'] }, layers);
  assert.ok(problems.includes('store.js (layer 1) imports app.js (layer 4): upward'), problems.join('\n'));
});

test('a cycle fails, within one layer too', () => {
  const layers = [[], [], ['a.js', 'b.js', 'c.js'], [], ['app.js']];
  const problems = check({ 'a.js': [2, 'b.js'], 'b.js': [2, 'c.js'], 'c.js': [2, 'a.js'], 'app.js': [4, 'a.js'] }, layers);
  assert.deepEqual(problems, ['import cycle: a.js -> b.js -> c.js -> a.js']);
});

test('a module outside the table, a missing one, a lying header and an unreachable one fail', () => {
  const layers = [['util.js', 'gone.js'], [], [], [], ['app.js']];
  const problems = check({ 'util.js': [1], 'stray.js': [0], 'app.js': [4, 'util.js', 'stray.js'] }, layers);
  assert.deepEqual(problems.sort(), [
    'app.js: imports ./stray.js, which is no module of the table',
    'gone.js: in the layer table but missing',
    'stray.js: not in the layer table',
    'util.js: must start with "// Layer 0 (utilities):"',
  ]);
  const unreached = check({ 'util.js': [0], 'app.js': [4] }, [['util.js'], [], [], [], ['app.js']]);
  assert.deepEqual(unreached, ['util.js: not reached from app.js']);
});
