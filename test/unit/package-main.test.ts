/**
 * package.json "main" is the built package entry (src/index.ts): requiring it works and
 * gives a library user the app's assembly, the configuration and the client helpers.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import type * as meshwire from '../../src';

/** The repository root (this file runs as dist/test/unit/package-main.test.js). */
const ROOT = join(__dirname, '..', '..', '..');

test('require(main) loads the package entry with startNode, loadConfig and createClients', async t => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { main: string };
  t.is(pkg.main, 'dist/src/index.js');
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- what a CommonJS user does
  const entry = require(join(ROOT, pkg.main)) as Record<string, unknown>;
  for (const name of [
    'startNode',
    'assembleNode',
    'loadConfig',
    'addConfigOptions',
    'createClients',
  ]) {
    t.is(typeof entry[name], 'function', name);
  }
  // The entry runs a node: the same assembly as `meshwire serve`, here without gRPC.
  const { loadConfig, startNode } = entry as unknown as typeof meshwire;
  const config = loadConfig({ argv: ['--peer-listen', '127.0.0.1:0'], env: {} });
  const app = await startNode({ config, grpc: false });
  t.true(app.node.peerAddress.port > 0);
  t.deepEqual(await app.shutdown(), { drained: true });
});
