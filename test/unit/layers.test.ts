/**
 * The folder layout is the architecture: a layer imports only from layers below it, and
 * only through their public face, index.ts (docs/design.md, "Layers"). This reads every
 * source file's imports and checks both.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import test from 'ava';

const ORDER = [
  'common',
  'telemetry',
  'transport',
  'mux',
  'rpc',
  'peers',
  'dispatch',
  'node',
  'api',
  'app',
  'cli',
];
const SRC = join(__dirname, '..', '..', '..', 'src');
const IMPORT = /(?:from|import\()\s*'(\.\.?\/[^']+)'/g;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap(name => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

test('every layer imports only from itself and the layers below it', t => {
  const violations: string[] = [];
  for (const file of files(SRC)) {
    const rel = relative(SRC, file);
    const layer = rel.split('/')[0];
    if (!ORDER.includes(layer)) {
      if (rel !== 'index.ts') violations.push(`${rel}: folder "${layer}" is not a known layer`);
      continue;
    }
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(IMPORT)) {
      const target = relative(SRC, join(file, '..', match[1])).split('/')[0];
      if (target === layer || !ORDER.includes(target)) continue;
      if (ORDER.indexOf(target) > ORDER.indexOf(layer)) {
        violations.push(`${rel} imports ${match[1]} (${layer} may not depend on ${target})`);
      }
    }
  }
  t.deepEqual(violations, []);
});

test('a layer imports another layer only through its index.ts', t => {
  const violations: string[] = [];
  for (const file of files(SRC)) {
    const rel = relative(SRC, file);
    const layer = rel.split('/')[0];
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(IMPORT)) {
      const target = relative(SRC, join(file, '..', match[1]));
      const parts = target.split('/');
      // the package entry (src/index.ts) is not a layer: it too imports layers' index files
      if (parts[0] === layer && rel !== 'index.ts') continue;
      if (!ORDER.includes(parts[0])) continue;
      if (parts.length > 2 || (parts.length === 2 && parts[1] !== 'index')) {
        violations.push(
          `${rel} imports ${match[1]} (use '${relative(join(file, '..'), join(SRC, parts[0]))}')`
        );
      }
    }
  }
  t.deepEqual(violations, []);
});

test('the package entry (src/index.ts) exports from the app and api layers only', t => {
  const text = readFileSync(join(SRC, 'index.ts'), 'utf8');
  const targets = [...text.matchAll(IMPORT)].map(m => m[1]);
  t.true(targets.includes('./app'));
  t.deepEqual(
    targets.filter(x => x !== './app' && x !== './api'),
    []
  );
});
