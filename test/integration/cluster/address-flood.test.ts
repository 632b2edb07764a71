/**
 * A client names 5,000 distinct dead loopback addresses as Send targets (issue 15): a
 * real node (gRPC, reliable UDP on loopback) keeps its address senders, pending timers,
 * open handshakes, memory and outgoing datagrams per second bounded during the flood,
 * and back to zero once the senders are idle (addressSenderIdleMs, short here).
 *
 * Timers are counted through the node's injected clock, which the cluster, its senders
 * and the UDP socket all use; datagrams through RudpSocket.stats().
 */
import { createSocket } from 'node:dgram';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { ServiceError } from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import test from 'ava';
import type { Clock, Timer } from '../../../src/common';
import { parseCidrList, systemClock } from '../../../src/common';
import type { RudpSocket } from '../../../src/transport';
import type { TestNode } from '../../helpers/node';
import { startTestNode, unary, waitFor } from '../../helpers/node';

/** systemClock that knows how many of its timers are pending. */
class CountingClock implements Clock {
  readonly pending = new Set<object>();
  now(): number {
    return systemClock.now();
  }
  setTimer(delayMs: number, fn: () => void): Timer {
    const token = {};
    this.pending.add(token);
    const t = systemClock.setTimer(delayMs, () => {
      this.pending.delete(token);
      fn();
    });
    return {
      cancel: () => {
        this.pending.delete(token);
        t.cancel();
      },
    };
  }
}

/** A UDP port with nothing bound to it on 127.0.0.0/8 (bound once, then closed). */
async function deadPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>(resolve => s.bind(0, '0.0.0.0', resolve));
  const port = s.address().port;
  await new Promise<void>(resolve => s.close(() => resolve()));
  return port;
}

// A full GC before each heap reading, so that garbage does not count as growth.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heapMb = (): number => {
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

const ADDRESSES = 5000;
const CAP = 64;
const IDLE_MS = 1500;
const ROUNDS = 40;
const ROUND_MS = 100;

interface Sample {
  senders: number;
  timers: number;
  connections: number;
  /** Over the last 500 ms. */
  datagramsPerSecond: number;
}

let node: TestNode;
let socket: RudpSocket;
const clock = new CountingClock();

test.before(async () => {
  // The production assembly with the counting clock: the node, its cluster and its
  // transport all take timers from it; the transport's stats count datagrams.
  node = await startTestNode(
    { nodeId: 'flood', maxAddressSenders: CAP, addressSenderIdleMs: IDLE_MS },
    true,
    { clock }
  );
  socket = node.server.peerTransport;
});
test.after.always(async () => {
  await node?.close();
});

test.serial(
  '5,000 dead address targets: senders, timers, handshakes, memory and datagrams/s stay bounded, then fall to zero',
  async t => {
    const cluster = node.server.node.cluster!;
    const port = await deadPort();
    const baselineTimers = clock.pending.size;
    const heapBefore = heapMb();
    const heap: number[] = [];
    const samples: Sample[] = [];
    const sent: Array<{ at: number; n: number }> = [];
    const sample = (): void => {
      const st = socket.stats();
      const now = performance.now();
      sent.push({ at: now, n: st.datagramsSent });
      while (sent.length > 1 && now - sent[0].at > 500) sent.shift();
      const span = now - sent[0].at;
      samples.push({
        senders: cluster.addressSenderCount,
        timers: clock.pending.size,
        connections: st.connections,
        datagramsPerSecond: span >= 400 ? ((st.datagramsSent - sent[0].n) * 1000) / span : 0,
      });
    };
    const sampler = setInterval(sample, 50);

    // The flood: 40 rounds of 125 new addresses, 100 ms apart (about 4 s, longer than the
    // idle timeout, so senders are retired and replaced during it).
    const outcome = { ok: 0, exhausted: 0, other: [] as string[] };
    const perRound = ADDRESSES / ROUNDS;
    for (let r = 0; r < ROUNDS; r++) {
      const calls: Array<Promise<void>> = [];
      for (let i = r * perRound; i < (r + 1) * perRound; i++) {
        const address = `127.0.${i >> 8}.${(i & 255) + 1}:${port}`;
        calls.push(
          unary(node.clients.messenger, 'Send', {
            target: { address },
            message: { topic: 'flood', payload: Buffer.from('x') },
          }).then(
            () => void outcome.ok++,
            (e: ServiceError) => {
              if (e.code === status.RESOURCE_EXHAUSTED) outcome.exhausted++;
              else outcome.other.push(`${e.code} ${e.details}`);
            }
          )
        );
      }
      await Promise.all(calls);
      if (r % 4 === 3) heap.push(heapMb());
      // On purpose: the flood is spread over real time, as the idle timeouts are.
      await new Promise(resolve => setTimeout(resolve, ROUND_MS));
    }
    const retiredDuringFlood = cluster.addressSenderRetirements.get('idle');
    sample();
    const flood = samples.slice();

    // Then nothing: every sender is retired after the idle timeout, every dial aborted.
    await waitFor(
      () => cluster.addressSenderCount === 0 && socket.stats().connections === 0,
      10_000,
      'address senders retired'
    );
    await waitFor(() => clock.pending.size <= baselineTimers, 5000, 'timers back to baseline');
    const quietFrom = socket.stats().datagramsSent;
    // The point: a quiet half second in which nothing may be sent.
    await new Promise(resolve => setTimeout(resolve, 500));
    const quietSent = socket.stats().datagramsSent - quietFrom;
    clearInterval(sampler);

    const max = (k: keyof Sample) => Math.max(...flood.map(s => s[k]));
    const heapMax = Math.max(...heap);
    t.log(
      `ok ${outcome.ok}, RESOURCE_EXHAUSTED ${outcome.exhausted}, retired during flood ${retiredDuringFlood}; ` +
        `max senders ${max('senders')}, timers ${max('timers')}, handshakes ${max('connections')}, ` +
        `datagrams/s ${Math.round(max('datagramsPerSecond'))}, heap after GC ${heapBefore.toFixed(1)} MB -> ${heap.map(h => h.toFixed(1)).join(' ')} MB`
    );
    t.deepEqual(outcome.other, [], 'every refusal is RESOURCE_EXHAUSTED');
    t.is(outcome.ok + outcome.exhausted, ADDRESSES);
    t.true(outcome.ok > CAP, 'retired senders made room for new addresses during the flood');
    t.true(retiredDuringFlood > 0);
    t.is(cluster.dropCounts().address_senders_full, outcome.exhausted);
    // Bounded by the cap, not by the 5,000 addresses named.
    t.true(max('senders') <= CAP, `senders ${max('senders')}`);
    t.true(max('connections') <= CAP, `handshakes ${max('connections')}`);
    // Per address sender at most: its TTL sweep, its retry, the dial's timeout and the
    // handshake's retransmission timer; plus the cluster's one idle sweep.
    t.true(max('timers') <= baselineTimers + 4 * CAP + 1, `timers ${max('timers')}`);
    // Handshake retransmissions of at most CAP dials (a few per second each).
    t.true(max('datagramsPerSecond') <= CAP * 20, `datagrams/s ${max('datagramsPerSecond')}`);
    t.true(heapMax - heapBefore < 32, `heap grew ${heapMax - heapBefore} MB`);
    // After the idle timeout: nothing left, nothing sent.
    t.is(cluster.addressSenderCount, 0);
    t.is(quietSent, 0);
    t.is(cluster.addressSenderRetirements.get('idle'), outcome.ok);
    const text = await (await fetch(`http://127.0.0.1:${node.server.metricsPort}/metrics`)).text();
    t.regex(text, /^meshwire_cluster_address_senders(\{[^}]*\})? 0$/m);
    t.regex(
      text,
      new RegExp(
        `^meshwire_cluster_address_senders_retired_total\\{[^}]*reason="idle"[^}]*\\} ${outcome.ok}$`,
        'm'
      )
    );
    t.regex(
      text,
      /^meshwire_messages_dropped_total\{[^}]*reason="address_senders_full"[^}]*\} [1-9]/m
    );
  }
);

test.serial(
  'through gRPC: addressTargets=false is FAILED_PRECONDITION, an address outside addressTargetCidrs PERMISSION_DENIED',
  async t => {
    const off = await startTestNode({ nodeId: 'addr-off', addressTargets: false });
    const narrow = await startTestNode({
      nodeId: 'addr-narrow',
      addressTargetCidrs: parseCidrList('127.0.0.2/32,fd00::/8'),
    });
    try {
      const req = (address: string) => ({
        target: { address },
        message: { topic: 't', payload: Buffer.from('x') },
      });
      for (const method of ['Send', 'Request']) {
        const e1 = await t.throwsAsync<ServiceError>(
          unary(off.clients.messenger, method, req('127.0.0.1:9'))
        );
        t.is(e1?.code, status.FAILED_PRECONDITION, method);
        t.regex(e1?.details ?? '', /addressTargets/);
        const e2 = await t.throwsAsync<ServiceError>(
          unary(narrow.clients.messenger, method, req('127.0.0.1:9'))
        );
        t.is(e2?.code, status.PERMISSION_DENIED, method);
        t.regex(e2?.details ?? '', /addressTargetCidrs/);
      }
      // Inside the list it is accepted (ACCEPTED: queued for the address sender).
      await t.notThrowsAsync(
        unary(narrow.clients.messenger, 'Send', req(`127.0.0.2:${await deadPort()}`))
      );
      t.is(narrow.server.node.cluster?.addressSenderCount, 1);
    } finally {
      await Promise.all([off.close(), narrow.close()]);
    }
  }
);
