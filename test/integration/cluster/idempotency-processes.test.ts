/**
 * Idempotent Send driven from outside: three `meshwire serve` processes (the window set by
 * flag and by environment variable), a Python grpcio client that publishes through one
 * node and retries through another (test/python/idempotency_client.py), the CLI's
 * `send --idempotency-key`, and the counters on /metrics.
 */
import { join } from 'node:path';
import test from 'ava';
import { createClients } from '../../../src/api';
import { rendezvousOwner } from '../../../src/node';
import { openSubscription, waitFor } from '../../helpers/node';
import { waitForPeersConnected } from '../../helpers/cluster';
import { freePorts } from '../../helpers/ports';
import type { NodeProcess } from '../../helpers/processes';
import { CLI, listenFlags, runCommand, spawnNode } from '../../helpers/processes';
import { PYTHON, PYTHON_DIR, pythonStubs } from '../../helpers/python';

const IDS = ['px-a', 'px-b', 'px-c'];

const run = (cmd: string, args: string[]) => runCommand(cmd, args, { timeoutMs: 90_000 });

async function metricsText(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  return res.text();
}

interface Ack {
  id: string;
  delivered: number;
  duplicate: boolean;
}

test('real processes: a Python client retries through another node and gets duplicate true; a 257-byte key is INVALID_ARGUMENT; the CLI prints the duplicate state; /metrics counts', async t => {
  const ports = await freePorts(9);
  const grpcPort = (i: number) => ports[i * 3];
  const peerPort = (i: number) => ports[i * 3 + 1];
  const metricsPort = (i: number) => ports[i * 3 + 2];
  const peers = IDS.map((id, i) => `${id}=127.0.0.1:${peerPort(i)}`).join(',');
  const nodes: NodeProcess[] = [];
  const clients: Array<ReturnType<typeof createClients>> = [];
  try {
    for (let i = 0; i < 3; i++) {
      const flags = [...listenFlags(grpcPort(i), peerPort(i), metricsPort(i)), '--peers', peers];
      // The window by flag on two nodes, by environment variable on the third.
      if (i < 2) flags.push('--idempotency-window-ms', '60000');
      nodes.push(
        await spawnNode(IDS[i], flags, i === 2 ? { MESHWIRE_IDEMPOTENCY_WINDOW_MS: '60000' } : {})
      );
      clients.push(createClients(`127.0.0.1:${grpcPort(i)}`));
    }
    for (let i = 0; i < 3; i++) {
      await waitForPeersConnected(
        clients[i].peers,
        IDS.filter((_, j) => j !== i),
        30_000
      );
    }
    const sub = await openSubscription(clients[2].messenger, { topics: ['py.>', 'cli.>'] });

    const stubs = pythonStubs();
    const py = await run(PYTHON, [
      join(PYTHON_DIR, 'idempotency_client.py'),
      stubs,
      `127.0.0.1:${grpcPort(0)}`,
      `127.0.0.1:${grpcPort(1)}`,
      'py-key',
    ]);
    t.is(py.code, 0, py.stderr);
    const out = JSON.parse(py.stdout.trim().split('\n').pop() ?? '{}') as {
      pairs: Array<{ key: string; first: Ack; retry: Ack }>;
      too_long: { code: string; details: string };
    };
    t.is(out.pairs.length, 5);
    for (const { key, first, retry } of out.pairs) {
      t.deepEqual(first, { id: first.id, delivered: 1, duplicate: false }, key);
      t.deepEqual(retry, { id: first.id, delivered: 1, duplicate: true }, key);
    }
    t.deepEqual(out.too_long, {
      code: 'INVALID_ARGUMENT',
      details: 'send: idempotency_key is 257 bytes; at most 256 bytes are allowed',
    });

    // The CLI: the same key through node A, then node B.
    const cliSend = (i: number) =>
      run(process.execPath, [
        CLI,
        'send',
        'cli.idem',
        'hello',
        '-s',
        `127.0.0.1:${grpcPort(i)}`,
        '--ack',
        'delivered',
        '--idempotency-key',
        'cli-key-1',
      ]);
    const c1 = await cliSend(0);
    t.is(c1.code, 0, c1.stderr);
    const ack1 = JSON.parse(c1.stdout) as Ack;
    t.false(ack1.duplicate);
    t.is(ack1.delivered, 1);
    const c2 = await cliSend(1);
    t.is(c2.code, 0, c2.stderr);
    t.deepEqual(JSON.parse(c2.stdout), { id: ack1.id, delivered: 1, duplicate: true });
    const bad = await run(process.execPath, [
      CLI,
      'send',
      'cli.idem',
      'x',
      '-s',
      `127.0.0.1:${grpcPort(0)}`,
      '--idempotency-key',
      'k'.repeat(300),
    ]);
    t.is(bad.code, 2, 'INVALID_ARGUMENT exits 2');
    t.regex(bad.stderr, /idempotency_key is 300 bytes; at most 256 bytes are allowed/);

    await waitFor(() => sub.state.items.length >= 6, 10_000, 'deliveries');
    await new Promise(r => setTimeout(r, 300));
    t.deepEqual(
      sub.state.items.map(d => d.message.payload.toString()).sort(),
      ['hello', 'py-key-0', 'py-key-1', 'py-key-2', 'py-key-3', 'py-key-4'],
      'each key delivered once'
    );

    // /metrics: the owner of cli-key-1 accepted it; the retrying node answered duplicates.
    const owner = IDS.indexOf(rendezvousOwner('cli-key-1', IDS) as string);
    const ownerMetrics = await metricsText(metricsPort(owner));
    t.regex(ownerMetrics, /^meshwire_idempotency_keys(_ratio)?(\{[^}]*\})? [1-9]/m);
    t.regex(ownerMetrics, /^meshwire_idempotency_keys_accepted_total(\{[^}]*\})? [1-9]/m);
    t.regex(
      ownerMetrics,
      /^meshwire_idempotency_replications_total\{[^}]*result="ok"[^}]*\} [1-9]/m,
      'the owner copied its acks to the replica'
    );
    // Names, types and units as docs/observability.md lists them.
    for (const [name, type, unit] of [
      ['meshwire_idempotency_keys', 'gauge', '{key}'],
      ['meshwire_idempotency_keys_accepted_total', 'counter', '{key}'],
      ['meshwire_idempotency_keys_forgotten_total', 'counter', '{key}'],
      ['meshwire_idempotency_duplicates_total', 'counter', '{message}'],
      ['meshwire_idempotency_claims_forwarded_total', 'counter', '{claim}'],
      ['meshwire_idempotency_completions_lost_total', 'counter', '{claim}'],
      ['meshwire_idempotency_replications_total', 'counter', '{key}'],
      ['meshwire_idempotency_lookups_total', 'counter', '{key}'],
      ['meshwire_idempotency_refusals_total', 'counter', '{message}'],
    ]) {
      t.true(ownerMetrics.includes(`# TYPE ${name} ${type}\n`), `${name} ${type}`);
      t.true(ownerMetrics.includes(`# UNIT ${name} ${unit}\n`), `${name} ${unit}`);
    }
    const bMetrics = await metricsText(metricsPort(1));
    t.regex(bMetrics, /^meshwire_idempotency_duplicates_total(\{[^}]*\})? 6$/m);
    const aMetrics = await metricsText(metricsPort(0));
    t.regex(
      aMetrics,
      /^meshwire_idempotency_refusals_total\{[^}]*reason="key_too_long"[^}]*\} 2$/m
    );
    t.regex(
      aMetrics,
      /^meshwire_idempotency_refusals_total\{[^}]*reason="owner_unreachable"[^}]*\} 0$/m
    );
    sub.stream.cancel();
  } finally {
    for (const c of clients) c.close();
    for (const n of nodes) await n.kill('SIGTERM');
  }
});
