/**
 * The cluster secret rotated without downtime (docs/security.md, "Rotating the cluster
 * secret"): three `meshwire serve` processes, each with its own secret file, under steady
 * Sends with ack DELIVERED and Requests across nodes (bench/chaos/churn.ts drives them),
 * while the test does the three steps by rewriting the files, never restarting a node:
 * 1) add B as accepted, 2) make B the one sent with, 3) remove A. Each step waits until
 * every node has reloaded (its /metrics). Afterwards: no call failed, every acknowledged
 * message was read, a fourth node with only B joins all three, and a node with only a
 * wrong secret joins none (the secret is what lets a node in).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import test from 'ava';
import { runChurn } from '../../../bench/chaos/churn';
import type { ChurnNode } from '../../../bench/chaos/churn';
import { createClients } from '../../../src/api';
import { SECRET_LIST_HEADER } from '../../../src/app/cluster-secrets';
import { unary } from '../../helpers/node';
import { waitForPeersConnected } from '../../helpers/cluster';
import { freePorts } from '../../helpers/ports';
import { listenFlags, spawnNode } from '../../helpers/processes';
import type { NodeProcess } from '../../helpers/processes';
import { parseExposition } from '../../helpers/promql';
import { waitFor } from '../../helpers/wait';

const dir = mkdtempSync(join(tmpdir(), 'meshwire-rotation-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** Replaces a file in one step (write, then rename), as Kubernetes swaps a Secret volume. */
function replaceFile(path: string, content: Buffer | string): void {
  writeFileSync(`${path}.tmp`, content);
  renameSync(`${path}.tmp`, path);
}

const list = (...lines: string[]): string => [SECRET_LIST_HEADER, ...lines, ''].join('\n');

/** One sample of a metric family at /metrics (labels must all match); 0 when absent. */
async function metric(
  port: number,
  family: string,
  labels: Record<string, string> = {}
): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const f = parseExposition(text).get(family);
  const s = f?.samples.find(x => Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.value ?? 0;
}

test('a 3-node cluster rotates its secret under traffic: zero failed calls, then only the new secret lets a node in', async t => {
  t.timeout(240_000);
  const ports = await freePorts(21);
  const nodes: ChurnNode[] = ['node-a', 'node-b', 'node-c'].map((id, i) => ({
    id,
    grpcPort: ports[3 * i]!,
    peerPort: ports[3 * i + 1]!,
    metricsPort: ports[3 * i + 2]!,
  }));
  // A: binary, in the one-secret file format of every earlier version (byte for byte);
  // B: a text secret; C: a secret no node of this cluster accepts.
  const A = randomBytes(32);
  const B = 'the new cluster secret, 2026-12';
  const C = 'a wrong secret that no node holds';
  const fileOf = (n: ChurnNode): string => join(dir, `${n.id}.secret`);
  for (const n of nodes) writeFileSync(fileOf(n), A);
  const secretsOf = (i: number) => metric(nodes[i]!.metricsPort, 'meshwire_cluster_secrets');
  const reloadsOf = (i: number) =>
    metric(nodes[i]!.metricsPort, 'meshwire_cluster_secret_reloads_total', { result: 'ok' });
  const acceptedOf = (i: number, index: number) =>
    metric(nodes[i]!.metricsPort, 'meshwire_cluster_handshakes_accepted_total', {
      secret_index: String(index),
    });
  /** Waits until every node has applied `n` reloads and accepts `count` secrets. */
  const waitReloaded = async (n: number, count: number): Promise<void> => {
    for (let i = 0; i < nodes.length; i++) {
      let seen = '';
      await waitFor(
        `${nodes[i]!.id} to apply reload ${n} (${count} secrets)`,
        async () => {
          const [r, c] = [await reloadsOf(i), await secretsOf(i)];
          seen = `reloads ${r}, secrets ${c}`;
          return r === n && c === count;
        },
        30_000,
        () => seen
      );
    }
  };
  const extra: NodeProcess[] = [];
  /** Lets the traffic run on: `n` more calls started (bounded wait). */
  const moreCalls = (calls: () => number, n: number): Promise<void> => {
    const target = calls() + n;
    return waitFor(`${n} more calls`, () => calls() >= target, 30_000);
  };
  const stepCalls: number[] = [];

  const peers = nodes.map(n => `${n.id}=127.0.0.1:${n.peerPort}`).join(',');
  let portsUsed = 9;
  /** Three free ports (gRPC, peer, metrics) for another node. */
  const nextPorts = (): number[] => ports.slice(portsUsed, (portsUsed += 3));
  const flags = ([g, p, m]: number[], secretFile: string) => [
    ...listenFlags(g, p, m),
    '--peers',
    peers,
    '--cluster-secret-file',
    secretFile,
    // info: spawnNode waits for the "meshwire node started" line
    '--log-level',
    'info',
  ];
  /**
   * A new node with secret file `content` makes new connections to all three (a node
   * that lags one step behind, or is one ahead, as during a rollout) and gets a targeted
   * Request answered on each; then it is stopped.
   */
  const joinsAll = async (id: string, content: string | Buffer): Promise<void> => {
    const file = join(dir, `${id}.secret`);
    writeFileSync(file, content);
    const own = nextPorts();
    const proc = await spawnNode(id, flags(own, file));
    extra.push(proc);
    const clients = createClients(`127.0.0.1:${own[0]}`);
    try {
      await waitForPeersConnected(
        clients.peers,
        nodes.map(n => n.id),
        30_000
      );
      for (const n of nodes) {
        // targeted: the link is up (above); interests may still be on their way
        const res = await unary<{ reply: { payload: Buffer } }>(clients.messenger, 'Request', {
          target: { peerId: n.id },
          message: { topic: `chaos.probe.${n.id}`, payload: Buffer.from(`${id} to ${n.id}`) },
          timeoutMs: 5000,
        });
        t.is(res.reply.payload.toString(), `${id} to ${n.id}`);
      }
    } finally {
      clients.close();
      await proc.kill('SIGKILL');
    }
  };

  const result = await runChurn({
    nodes,
    restartOrder: [],
    nodeFlags: n => ['--cluster-secret-file', fileOf(n)],
    // info: the reload lines are read from the nodes' output
    extraFlags: ['--log-level', 'info'],
    tickMs: 40,
    maxInFlight: 32,
    maxCalls: 8000,
    callDeadlineMs: 5000,
    hangSlackMs: 1000,
    maxReplyDelayMs: 100,
    settleMs: 1000,
    drainTimeoutMs: 3000,
    waitMs: 30_000,
    seed: 20261219,
    log: msg => t.log(msg),
    duringTraffic: async ctx => {
      for (let i = 0; i < nodes.length; i++) t.is(await secretsOf(i), 1, 'A only at start');
      stepCalls.push(ctx.calls());
      // 1) B accepted, A still sent with; seen by the file watcher (no signal)
      for (const n of nodes) replaceFile(fileOf(n), list(`base64:${A.toString('base64')}`, B));
      await waitReloaded(1, 2);
      // a node already at step 2 (sends B) is accepted by nodes at step 1
      await joinsAll('ahead-1', list(B, `base64:${A.toString('base64')}`));
      await moreCalls(ctx.calls, 100);
      t.log(`step 1 applied on every node; ${ctx.calls()} calls so far`);
      stepCalls.push(ctx.calls());
      // 2) B sent with, A still accepted; SIGHUP reloads at once
      for (const n of nodes) replaceFile(fileOf(n), list(B, `base64:${A.toString('base64')}`));
      for (let i = 0; i < nodes.length; i++) ctx.signal(i, 'SIGHUP');
      await waitReloaded(2, 2);
      for (let i = 0; i < nodes.length; i++) {
        t.regex(ctx.output(i), /signal received: reloading the cluster secrets/, nodes[i]!.id);
        t.regex(ctx.output(i), /"secrets":2,"reloads":2,"msg":"cluster secrets reloaded"/);
      }
      // a node still at step 1 (sends A) is accepted by nodes at step 2, A matching second
      const secondBefore = await acceptedOf(0, 1);
      await joinsAll('behind-2', list(`base64:${A.toString('base64')}`, B));
      t.true((await acceptedOf(0, 1)) > secondBefore, 'node-a matched A, its second secret');
      await moreCalls(ctx.calls, 100);
      t.log(`step 2 applied on every node; ${ctx.calls()} calls so far`);
      stepCalls.push(ctx.calls());
      // A broken file is refused: node-c keeps {B, A} and counts why
      replaceFile(fileOf(nodes[2]!), list(B, 'too short'));
      ctx.signal(2, 'SIGHUP');
      await waitFor('node-c to refuse the bad file', async () => {
        const failed = await metric(
          nodes[2]!.metricsPort,
          'meshwire_cluster_secret_reloads_total',
          { result: 'failed', reason: 'invalid' }
        );
        return failed === 1;
      });
      t.is(await secretsOf(2), 2, 'the refused file left the old set in place');
      t.regex(ctx.output(2), /cluster secret reload refused: keeping the previous secrets/);
      t.regex(ctx.output(2), /line 3: the secret is 9 bytes, at least 16 are needed/);
      // 3) A removed (the one-secret format again); by the watcher
      for (const n of nodes) replaceFile(fileOf(n), B);
      await waitReloaded(3, 1);
      await moreCalls(ctx.calls, 100);
      t.log(`step 3 applied on every node; ${ctx.calls()} calls so far`);
      stepCalls.push(ctx.calls());

      // New connections work with B alone: a fourth node, holding only B, joins all three.
      await joinsAll('node-d', B);
      t.true((await acceptedOf(0, 0)) > 0, 'node-a accepted handshakes under its first secret');

      // And a node holding only a wrong secret joins none: its INITIALs are bad_auth drops.
      const badBefore = await metric(
        nodes[0]!.metricsPort,
        'meshwire_transport_datagrams_dropped_total',
        { reason: 'bad_auth' }
      );
      const secretE = join(dir, 'node-e.secret');
      writeFileSync(secretE, C);
      const portsE = nextPorts();
      const e = await spawnNode('node-e', flags(portsE, secretE));
      extra.push(e);
      const ce = createClients(`127.0.0.1:${portsE[0]}`);
      try {
        await waitFor(
          'node-a to drop node-e handshakes as bad_auth',
          async () =>
            (await metric(nodes[0]!.metricsPort, 'meshwire_transport_datagrams_dropped_total', {
              reason: 'bad_auth',
            })) > badBefore,
          30_000
        );
        const err = await unary(ce.messenger, 'Request', {
          target: { peerId: 'node-a' },
          message: { topic: 'chaos.probe.node-a', payload: Buffer.from('x') },
          timeoutMs: 2000,
        }).catch((x: ServiceError) => x);
        // no link: the request waits for one until its timeout (or fails fast)
        t.true(
          [status.UNAVAILABLE, status.DEADLINE_EXCEEDED].includes((err as ServiceError).code),
          `a wrong secret gets no link: ${(err as Error).message}`
        );
        const peersOfE = await unary<{ peers: Array<{ id: string; state: string }> }>(
          ce.peers,
          'ListPeers',
          {}
        );
        t.false(
          peersOfE.peers.some(p => p.state === 'connected'),
          JSON.stringify(peersOfE.peers)
        );
      } finally {
        ce.close();
      }
    },
  }).finally(async () => {
    await Promise.all(extra.map(p => p.kill('SIGKILL')));
  });

  const s = result.summary;
  t.log(JSON.stringify({ ...s, examples: undefined, restarts: undefined }), stepCalls);
  if (s.examples.length > 0) t.log(s.examples.join('\n'));
  // traffic ran through every step
  for (let i = 1; i < stepCalls.length; i++)
    t.true(stepCalls[i]! - stepCalls[i - 1]! >= 20, `calls during step ${i}: ${stepCalls}`);
  t.true(s.sends_acked >= 300, `only ${s.sends_acked} acknowledged sends`);
  t.true(s.requests >= 300, `only ${s.requests} requests`);
  t.is(result.nodeCrashes, 0, 'no node exited unasked');
  t.is(s.send_errors, 0, `failed sends: ${JSON.stringify(s.errors_by_code)}`);
  t.is(s.request_errors, 0, `failed requests: ${JSON.stringify(s.errors_by_code)}`);
  t.is(s.sends_acked, s.sends, 'every Send acknowledged DELIVERED');
  t.is(s.acked_lost, 0, 'every acknowledged Send was read by its subscriber');
  t.is(s.duplicates, 0);
  t.is(s.hung_calls, 0);
  t.is(s.reply_mismatches, 0);
  t.deepEqual(
    s.examples.filter(x => x.includes('Respond')),
    [],
    'every Respond reached its requester'
  );
});
