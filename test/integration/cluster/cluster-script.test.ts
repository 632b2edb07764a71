/**
 * `make cluster` (scripts/cluster.sh) on ports from the environment: three nodes come up
 * on MESHWIRE_CLUSTER_BASE_PORT (+10, +20) and MESHWIRE_CLUSTER_METRICS_PORT (+1, +2),
 * find each other as static peers, carry a message from node-a to a subscriber on node-c,
 * and stop with exit 0 on SIGTERM. A bad port value is refused before anything starts.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import test from 'ava';
import { waitFor } from '../../helpers/wait';

const ROOT = resolve(__dirname, '../../../..');
const CLI = join(ROOT, 'dist/src/cli/main.js');

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise(res => {
    execFile(process.execPath, [CLI, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      res({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

function httpStatus(url: string): Promise<number> {
  return new Promise(res => {
    get(url, r => {
      r.resume();
      res(r.statusCode ?? 0);
    }).on('error', () => res(0));
  });
}

/** A base port whose +0/+1, +10/+11, +20/+21 are free, and three free metrics ports in a row. */
async function freeLayout(): Promise<{ base: number; metrics: number }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const metrics = base + 100;
    const wanted = [0, 1, 10, 11, 20, 21]
      .map(d => base + d)
      .concat([0, 1, 2].map(d => metrics + d));
    const ok = await Promise.all(
      wanted.map(
        p =>
          new Promise<boolean>(res => {
            const s = createServer();
            s.once('error', () => res(false));
            s.listen(p, '127.0.0.1', () => s.close(() => res(true)));
          })
      )
    );
    if (ok.every(Boolean)) return { base, metrics };
  }
  throw new Error('no free port layout found');
}

test('make cluster on MESHWIRE_CLUSTER_BASE_PORT / MESHWIRE_CLUSTER_METRICS_PORT: three nodes up there, a message across them, SIGTERM exits 0', async t => {
  const { base, metrics } = await freeLayout();
  const logs = mkdtempSync(join(tmpdir(), 'meshwire-cluster-'));
  const script = spawn('bash', [join(ROOT, 'scripts/cluster.sh')], {
    cwd: ROOT,
    env: {
      ...process.env,
      MESHWIRE_CLUSTER_BASE_PORT: String(base),
      MESHWIRE_CLUSTER_METRICS_PORT: String(metrics),
      MESHWIRE_CLUSTER_LOG_DIR: logs,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  script.stdout.on('data', (d: Buffer) => (out += d.toString()));
  script.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>(res => script.on('exit', code => res(code)));
  try {
    // Asserted below, with the output.
    await waitFor('the cluster up', () => out.includes('meshwire cluster up'), 30_000).catch(
      () => undefined
    );
    t.true(
      out.includes(
        `node-a 127.0.0.1:${base}, node-b 127.0.0.1:${base + 10}, node-c 127.0.0.1:${base + 20}`
      ),
      out
    );
    t.true(out.includes(`metrics ${metrics}/${metrics + 1}/${metrics + 2}`), out);
    for (const m of [metrics, metrics + 1, metrics + 2]) {
      // A node started 2 s ago may still be starting on a loaded machine.
      let status = 0;
      await waitFor(
        `metrics on ${m}`,
        async () => (status = await httpStatus(`http://127.0.0.1:${m}/metrics`)) === 200,
        20_000
      ).catch(() => undefined);
      t.is(status, 200, `metrics on ${m}`);
    }
    const peers = await cli(['peers', '-s', `127.0.0.1:${base}`]);
    t.is(peers.code, 0, peers.stderr);
    const byId = new Map(
      peers.stdout
        .trim()
        .split('\n')
        .map(l => JSON.parse(l) as { id: string; addresses: string[] })
        .map(p => [p.id, p.addresses])
    );
    t.deepEqual(byId.get('node-b'), [`127.0.0.1:${base + 11}`]);
    t.deepEqual(byId.get('node-c'), [`127.0.0.1:${base + 21}`]);

    // A message from node-a reaches a subscriber on node-c (interest crosses the peers).
    const sub = cli(['sub', 'cluster.>', '--text', '--count', '1', '-s', `127.0.0.1:${base + 20}`]);
    // Sent again until one is delivered: node-c's interest has reached node-a.
    await waitFor(
      "node-c's interest at node-a",
      async () => {
        const r = await cli([
          'send',
          'cluster.x',
          'hello',
          '--ack',
          'delivered',
          '-s',
          `127.0.0.1:${base}`,
        ]);
        t.is(r.code, 0, r.stderr);
        return (JSON.parse(r.stdout) as { delivered: number }).delivered > 0;
      },
      60_000
    );
    const line = JSON.parse((await sub).stdout) as {
      message: { payload: string };
      sourcePeer: string;
    };
    t.is(line.message.payload, 'hello');
    t.is(line.sourcePeer, 'node-a');
  } finally {
    script.kill('SIGTERM');
    t.is(await exited, 0, out);
    rmSync(logs, { recursive: true, force: true });
  }
  t.regex(out, /stopping the cluster/);
});

test('make cluster refuses a port variable that is not a usable port, before starting anything', async t => {
  for (const [name, value] of [
    ['MESHWIRE_CLUSTER_BASE_PORT', 'abc'],
    ['MESHWIRE_CLUSTER_BASE_PORT', '65530'],
    ['MESHWIRE_CLUSTER_METRICS_PORT', '0'],
  ]) {
    const r = await new Promise<{ code: number | null; stderr: string }>(res => {
      execFile(
        'bash',
        [join(ROOT, 'scripts/cluster.sh')],
        { cwd: ROOT, env: { ...process.env, [name as string]: value }, timeout: 10_000 },
        (err, _stdout, stderr) => res({ code: err ? (err.code as number) : 0, stderr })
      );
    });
    t.is(r.code, 2, `${name}=${value}`);
    t.regex(r.stderr, new RegExp(`${name}=${value}: expected a port`));
  }
});
