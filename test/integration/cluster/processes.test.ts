/**
 * Nodes as separate processes through the real CLI: a node killed mid-traffic and
 * restarted, and DNS peer resolution against a real DNS server (dnsmasq) on loopback.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import test from 'ava';
import type { DeliveryBatch, SendResponse } from '../../../src/api';
import { createClients } from '../../../src/api';
import {
  openSubscription,
  serverStream,
  startTestNode,
  subscribed,
  unary,
  waitFor,
} from '../../helpers/node';
import { waitForPeersConnected } from '../../helpers/cluster';
import { freePorts } from '../../helpers/ports';
import type { NodeProcess } from '../../helpers/processes';
import { listenFlags, spawnNode } from '../../helpers/processes';

const body = (s: string) => Buffer.from(s);

test('a node killed mid-traffic: requests fail fast with UNAVAILABLE, messages queue, traffic resumes after restart', async t => {
  const [ga, pa, ma, gb, pb, mb] = await freePorts(6);
  const peers = `node-a=127.0.0.1:${pa},node-b=127.0.0.1:${pb}`;
  const flags = (g: number, p: number, m: number) => [...listenFlags(g, p, m), '--peers', peers];
  let a: NodeProcess | undefined;
  let b: NodeProcess | undefined;
  const ca = createClients(`127.0.0.1:${ga}`);
  let cb = createClients(`127.0.0.1:${gb}`);
  try {
    a = await spawnNode('node-a', flags(ga, pa, ma));
    b = await spawnNode('node-b', flags(gb, pb, mb));
    // A responder on B.
    const respondOn = (clients: ReturnType<typeof createClients>) => {
      const s = serverStream<DeliveryBatch>(clients.messenger, 'Subscribe', {
        topics: ['svc.>'],
        maxBatch: 32,
      });
      s.on('data', (batch: DeliveryBatch) => {
        for (const d of batch.deliveries) {
          void unary(clients.messenger, 'Respond', {
            replyTo: d.replyTo,
            message: { payload: d.message.payload },
          }).catch(() => undefined);
        }
      });
      s.on('error', () => undefined);
      // The response headers say the responder is live on B.
      return subscribed(s);
    };
    await respondOn(cb);
    // A reaches B once its link is up (targeted requests fail fast until then).
    await waitForPeersConnected(ca.peers, ['node-b']);
    let ok = 0;
    for (let i = 0; i < 20; i++) {
      await unary(ca.messenger, 'Request', {
        target: { peerId: 'node-b' },
        message: { topic: 'svc.x', payload: body('p') },
        timeoutMs: 2000,
      });
      ok++;
    }
    t.is(ok, 20, 'requests flow before the kill');
    // Kill B hard while requests are in flight.
    const inflight = Array.from({ length: 10 }, () =>
      unary(
        ca.messenger,
        'Request',
        {
          target: { peerId: 'node-b' },
          message: { topic: 'svc.slow', payload: body('p') },
          timeoutMs: 25_000,
        },
        30_000
      ).then(
        () => 'ok',
        (err: ServiceError) => err.code
      )
    );
    await b.kill('SIGKILL');
    const codes = await Promise.all(inflight);
    // Either answered before the kill, or failed as UNAVAILABLE — never left to the deadline.
    t.true(
      codes.every(c => c === 'ok' || c === status.UNAVAILABLE),
      JSON.stringify(codes)
    );
    t.true(codes.some(c => c === status.UNAVAILABLE));
    // While B is down: new requests fail fast, fire-and-forget messages are queued.
    const down = await t.throwsAsync<ServiceError>(
      unary(
        ca.messenger,
        'Request',
        {
          target: { peerId: 'node-b' },
          message: { topic: 'svc.x', payload: body('p') },
          timeoutMs: 25_000,
        },
        30_000
      )
    );
    t.is(down?.code, status.UNAVAILABLE);
    const queued = await unary<SendResponse>(ca.messenger, 'Send', {
      target: { peerId: 'node-b' },
      message: { topic: 'q.x', payload: body('queued') },
    });
    t.truthy(queued.id);
    // Restart B on the same ports: traffic resumes.
    cb.close();
    b = await spawnNode('node-b', flags(gb, pb, mb));
    cb = createClients(`127.0.0.1:${gb}`);
    await respondOn(cb);
    // A reconnects (its sender retries with backoff): wait for that, then one request.
    await waitForPeersConnected(ca.peers, ['node-b'], 20_000);
    const r = await unary<{ reply: { payload: Buffer } }>(ca.messenger, 'Request', {
      target: { peerId: 'node-b' },
      message: { topic: 'svc.x', payload: body('again') },
      timeoutMs: 5000,
    });
    t.is(r.reply.payload.toString(), 'again', 'requests to the restarted node succeed');
  } finally {
    ca.close();
    cb.close();
    await a?.kill();
    await b?.kill();
  }
});

function startDnsmasq(port: number, hostsFile: string): ChildProcess {
  return spawn('/usr/sbin/dnsmasq', [
    '--no-daemon',
    '--keep-in-foreground',
    `--port=${port}`,
    '--listen-address=127.0.0.1',
    '--bind-interfaces',
    '--no-resolv',
    '--no-hosts',
    `--addn-hosts=${hostsFile}`,
    '--no-negcache',
    '--local-ttl=0',
    '--user=root',
    '--pid-file=',
  ]);
}

test('DNS peers: resolved through a real DNS server, re-resolved when the record changes', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'mw-dns-'));
  const hosts = join(dir, 'hosts');
  writeFileSync(hosts, '127.0.0.2 node-b.mesh.test\n');
  const [dnsPort, peerPort] = await freePorts(2);
  const dns = startDnsmasq(dnsPort, hosts);
  let dnsOut = '';
  dns.stderr?.on('data', (d: Buffer) => (dnsOut += d.toString()));
  const nodes: Array<Awaited<ReturnType<typeof startTestNode>>> = [];
  try {
    const a = await startTestNode(
      {
        nodeId: 'node-a',
        peerDns: '{id}.mesh.test',
        peerIds: ['node-a', 'node-b'],
        peerListen: { host: '127.0.0.1', port: peerPort },
      },
      false,
      { dnsServers: [`127.0.0.1:${dnsPort}`], dnsIntervalMs: 200 }
    );
    nodes.push(a);
    const b1 = await startTestNode({
      nodeId: 'node-b',
      peerListen: { host: '127.0.0.2', port: peerPort },
    });
    nodes.push(b1);
    // As in a StatefulSet, every node uses the same peer port; DNS gives the host.
    t.is(a.server.node.directory.get('node-b')?.dnsName, 'node-b.mesh.test');
    const sendToB = () =>
      unary<SendResponse>(
        a.clients.messenger,
        'Send',
        {
          target: { peerId: 'node-b' },
          message: { topic: 'dns.t', payload: body('x') },
          ack: 'DELIVERED',
        },
        3000
      );
    const sub1 = await openSubscription(b1.clients.messenger, { topics: ['dns.t'] });
    await waitFor(
      () => (a.server.node.directory.get('node-b')?.addresses.length ?? 0) > 0,
      10_000,
      `DNS answer (${dnsOut})`
    );
    t.deepEqual(a.server.node.directory.get('node-b')?.addresses, [
      { host: '127.0.0.2', port: peerPort },
    ]);
    t.is((await sendToB()).delivered, 1);
    await waitFor(() => sub1.state.items.length === 1);
    // B moves to a new address; the record changes; A follows.
    await b1.close();
    nodes.pop();
    const b2 = await startTestNode({
      nodeId: 'node-b',
      peerListen: { host: '127.0.0.3', port: peerPort },
    });
    nodes.push(b2);
    const sub2 = await openSubscription(b2.clients.messenger, { topics: ['dns.t'] });
    writeFileSync(hosts, '127.0.0.3 node-b.mesh.test\n');
    dns.kill('SIGHUP');
    await waitFor(
      () => a.server.node.directory.get('node-b')?.addresses[0]?.host === '127.0.0.3',
      10_000,
      're-resolution'
    );
    t.is((await sendToB()).delivered, 1);
    await waitFor(() => sub2.state.items.length === 1);
  } finally {
    for (const n of nodes) await n.close();
    dns.kill();
  }
});
