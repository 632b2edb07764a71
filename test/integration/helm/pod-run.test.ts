/**
 * The chart's pod, run for real without Kubernetes: the node process gets exactly the
 * environment and mounted files that replica 0 of 3 would get from the rendered
 * manifests (ports moved to free ones; auth on, with the generated tokens file), while
 * its DNS peers do not resolve, as when pods start in parallel. Then the chart's own
 * `helm test` driver runs against it, and SIGTERM must drain and exit 0.
 */
import test from 'ava';
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHART, ROOT, find, materializePod, render } from './chart-helpers';

const CLI = join(ROOT, 'dist/src/cli/main.js');
const DRIVER = join(CHART, 'files/helm-test.js');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
}

/** Collects output and resolves on exit; kills the process after `limitMs` (a hang is a failure). */
function run(child: ChildProcess, limitMs: number): Promise<Exit> {
  let out = '';
  child.stdout?.on('data', d => (out += String(d)));
  child.stderr?.on('data', d => (out += String(d)));
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
  return new Promise(resolve =>
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out });
    })
  );
}

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, res => {
      let body = '';
      res.on('data', d => (body += String(d)));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

test('replica 0 run from its rendered config: helm test driver passes, metrics served, SIGTERM drains and exits 0', async t => {
  const [grpc, peer, metrics] = [await freePort(), await freePort(), await freePort()];
  const objects = render({
    set: [`ports.grpc=${grpc}`, `ports.peer=${peer}`, `ports.metrics=${metrics}`],
  });
  t.is(find(objects, 'StatefulSet').spec.replicas, 3);
  const root = mkdtempSync(join(tmpdir(), 'meshwire-pod-'));
  // The helm test pod's mount of the generated test token.
  const tokenFile = join(root, 'test-token');
  const auth = find(objects, 'Secret', 'mw-meshwire-auth');
  writeFileSync(tokenFile, Buffer.from(auth.data['test-token'] as string, 'base64'));
  const node = spawn(process.execPath, [CLI, 'serve'], {
    cwd: root,
    env: { PATH: process.env.PATH, ...materializePod(objects, 0, 'prod', root).env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const nodeExit = run(node, 120_000);
  try {
    const driver = spawn(process.execPath, [DRIVER], {
      env: {
        PATH: process.env.PATH,
        TEST_APP_DIR: ROOT,
        TEST_NODES: '127.0.0.1',
        TEST_GRPC_PORT: String(grpc),
        TEST_TIMEOUT_SECONDS: '45',
        TEST_TOKEN_FILE: tokenFile,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const result = await run(driver, 60_000);
    if (result.code !== 0) {
      node.kill('SIGTERM');
      t.log((await nodeExit).out);
    }
    t.is(result.code, 0, result.out);
    t.regex(result.out, /127\.0\.0\.1: SERVING/);
    t.regex(result.out, /received round-trip-[0-9a-f]+ on 127\.0\.0\.1: OK/);

    const scrape = await httpGet(`http://127.0.0.1:${metrics}/metrics`);
    t.is(scrape.status, 200);
    t.regex(scrape.body, /^meshwire_/m);
  } finally {
    node.kill('SIGTERM');
    const exit = await nodeExit;
    rmSync(root, { recursive: true, force: true });
    t.is(exit.code, 0, exit.out);
    t.regex(exit.out, /"node_id":"mw-meshwire-0"/);
    t.regex(exit.out, /draining/);
  }
});
