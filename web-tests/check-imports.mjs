// The web client's layering, declared once and enforced: the table below puts
// every module of control/web in a layer, and the check fails on an import
// cycle, an upward import, a module missing from the table (or a table entry
// without its module), a module whose `// Layer N (...)` header disagrees with
// the table, and a module the entry never reaches. Cycles are also refused
// within a layer, where imports are otherwise allowed. No npm dependencies:
// `node web-tests/check-imports.mjs` (deploy/web-test runs it).

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const LAYERS = [
  // 0 utilities: no app state, import nothing of the app.
  ['util.js', 'md5.js', 'emoji.js', 'net.js', 'toasts.js'],
  // 1 store: state and subscribe/publish; never the network or the DOM.
  ['store.js'],
  // 2 services: talk to the server and change the state; no views.
  ['transport.js', 'loaders.js', 'outbox.js', 'history.js', 'conversations.js',
    'sync.js', 'session.js', 'navigation.js', 'uploads.js'],
  // 3 views: draw the state and turn clicks into service calls.
  ['avatars.js', 'dialogs.js', 'message-menu.js', 'messages.js', 'mentions.js', 'composer.js', 'chat.js',
    'group-admin.js', 'info-panel.js', 'people.js', 'requests.js', 'search.js', 'group-dialogs.js', 'profile.js', 'settings.js',
    'sidebar.js', 'auth.js'],
  // 4 shell: the frame and the wiring of topics to views; the entry.
  ['shell.js', 'app.js'],
];
export const LAYER_NAMES = ['utilities', 'store', 'services', 'views', 'shell'];
export const ENTRY = 'app.js';

const STATIC_IMPORT = /^\s*(?:import|export)\s[^;]*?\bfrom\s*['"]([^'"]+)['"]/gm;
const BARE_IMPORT = /^\s*import\s*['"]([^'"]+)['"]/gm;
const DYNAMIC_IMPORT = /\bimport\s*\(/;
const HEADER = /^\/\/ Layer (\d) \(([a-z]+)\):/;

/** The problems of the modules in `dir` against `layers`; empty when all is well. */
export function checkImports(dir, layers = LAYERS, entry = ENTRY) {
  const problems = [];
  const layerOf = new Map();
  layers.forEach((mods, n) => mods.forEach((m) => layerOf.set(m, n)));
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.js')).sort();
  for (const f of files) if (!layerOf.has(f)) problems.push(`${f}: not in the layer table`);
  for (const m of layerOf.keys()) if (!files.includes(m)) problems.push(`${m}: in the layer table but missing`);

  const graph = new Map();
  for (const f of files.filter((x) => layerOf.has(x))) {
    const src = fs.readFileSync(path.join(dir, f), 'utf8');
    const header = HEADER.exec(src);
    const n = layerOf.get(f);
    if (!header || Number(header[1]) !== n || header[2] !== LAYER_NAMES[n]) {
      problems.push(`${f}: must start with "// Layer ${n} (${LAYER_NAMES[n]}):"`);
    }
    if (DYNAMIC_IMPORT.test(src)) problems.push(`${f}: a dynamic import() escapes this check`);
    const targets = [];
    for (const re of [STATIC_IMPORT, BARE_IMPORT]) {
      for (const [, spec] of src.matchAll(re)) {
        const target = spec.replace(/^\.\//, '');
        if (!spec.startsWith('./') || target.includes('/')) {
          problems.push(`${f}: imports ${spec}, outside the client's flat module folder`);
        } else if (!layerOf.has(target)) {
          problems.push(`${f}: imports ${spec}, which is no module of the table`);
        } else {
          targets.push(target);
          if (layerOf.get(target) > n) {
            problems.push(`${f} (layer ${n}) imports ${target} (layer ${layerOf.get(target)}): upward`);
          }
        }
      }
    }
    graph.set(f, targets);
  }

  for (const cycle of findCycles(graph)) problems.push(`import cycle: ${cycle.join(' -> ')}`);

  const reached = new Set();
  const walk = (m) => {
    if (reached.has(m) || !graph.has(m)) return;
    reached.add(m);
    for (const t of graph.get(m)) walk(t);
  };
  walk(entry);
  for (const f of graph.keys()) if (!reached.has(f)) problems.push(`${f}: not reached from ${entry}`);
  return problems;
}

/** One cycle per back edge of a depth-first walk, each as [a, b, ..., a]. */
function findCycles(graph) {
  const cycles = [];
  const state = new Map(); // module -> 'open' while on the path, 'done' after
  const stack = [];
  const visit = (m) => {
    state.set(m, 'open');
    stack.push(m);
    for (const t of graph.get(m) || []) {
      if (state.get(t) === 'open') cycles.push([...stack.slice(stack.indexOf(t)), t]);
      else if (!state.has(t)) visit(t);
    }
    stack.pop();
    state.set(m, 'done');
  };
  for (const m of graph.keys()) if (!state.has(m)) visit(m);
  return cycles;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'control', 'web');
  const problems = checkImports(dir);
  if (problems.length) {
    console.error(`check-imports: ${problems.length} problem(s) in control/web:`);
    for (const p of problems) console.error(`  ${p}`);
    process.exit(1);
  }
  const count = LAYERS.flat().length;
  console.log(`check-imports: ${count} modules in ${LAYERS.length} layers, imports go downward, no cycle`);
}
