/**
 * The folder layout is the architecture: a layer imports only from layers below it
 * (docs/design.md, "Layers"). This reads every source file's imports and checks the order.
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
  'cli',
];
const SRC = join(__dirname, '..', '..', '..', 'src');

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
    for (const match of text.matchAll(/(?:from|import\()\s*'(\.\.?\/[^']+)'/g)) {
      const target = relative(SRC, join(file, '..', match[1])).split('/')[0];
      if (target === layer || !ORDER.includes(target)) continue;
      if (ORDER.indexOf(target) > ORDER.indexOf(layer)) {
        violations.push(`${rel} imports ${match[1]} (${layer} may not depend on ${target})`);
      }
    }
  }
  t.deepEqual(violations, []);
});
