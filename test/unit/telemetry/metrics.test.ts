import type { DataPoint, Histogram, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import test from 'ava';
import type { TransportStatsLike } from '../../../src/telemetry';
import { MessagingTelemetry, TransportMetrics } from '../../../src/telemetry';

/** A reader that collects on demand (no exporter, no timers). */
class PullReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

async function setup(): Promise<{ reader: PullReader; provider: MeterProvider }> {
  const reader = new PullReader();
  const provider = new MeterProvider({ readers: [reader] });
  return { reader, provider };
}

async function points(reader: PullReader): Promise<Map<string, Array<DataPoint<unknown>>>> {
  const { resourceMetrics }: { resourceMetrics: ResourceMetrics } = await reader.collect();
  const out = new Map<string, Array<DataPoint<unknown>>>();
  for (const sm of resourceMetrics.scopeMetrics) {
    for (const m of sm.metrics) {
      out.set(m.descriptor.name, m.dataPoints as Array<DataPoint<unknown>>);
    }
  }
  return out;
}

function value(
  all: Map<string, Array<DataPoint<unknown>>>,
  name: string,
  attrs: Record<string, unknown> = {}
): unknown {
  const dp = (all.get(name) ?? []).find(p =>
    Object.entries(attrs).every(([k, v]) => p.attributes[k] === v)
  );
  return dp?.value;
}

class FakeConnection {
  constructor(public s: TransportStatsLike) {}
  stats(): TransportStatsLike {
    return this.s;
  }
}

test('transport figures per peer: gauges while open, counters kept after close', async t => {
  const { reader, provider } = await setup();
  const tm = new TransportMetrics();
  tm.attach(provider.getMeter('t'));
  const c1 = new FakeConnection({
    srttMs: 12.5,
    cwnd: 14720,
    bytesInFlight: 3000,
    retransmissions: 4,
    lostPackets: 3,
    drops: { bad_auth: 2 },
  });
  const c2 = new FakeConnection({ srttMs: 2, cwnd: 1, retransmissions: 1, drops: { bad_auth: 1 } });
  const off1 = tm.registerConnection('node-b', c1);
  tm.registerConnection('node-c', c2);
  let all = await points(reader);
  t.is(value(all, 'meshwire.transport.srtt', { 'meshwire.peer.id': 'node-b' }), 0.0125);
  t.is(value(all, 'meshwire.transport.cwnd', { 'meshwire.peer.id': 'node-b' }), 14720);
  t.is(value(all, 'meshwire.transport.in_flight', { 'meshwire.peer.id': 'node-b' }), 3000);
  t.is(value(all, 'meshwire.transport.retransmissions', { 'meshwire.peer.id': 'node-b' }), 4);
  t.is(value(all, 'meshwire.transport.packets.lost', { 'meshwire.peer.id': 'node-b' }), 3);
  t.is(
    value(all, 'meshwire.transport.packets.dropped', {
      'meshwire.peer.id': 'node-c',
      reason: 'bad_auth',
    }),
    1
  );
  // The connection to node-b closes after more retransmissions; a new one opens.
  c1.s = { ...c1.s, retransmissions: 6 };
  off1();
  off1();
  tm.registerConnection('node-b', new FakeConnection({ srttMs: 1, retransmissions: 1 }));
  all = await points(reader);
  t.is(value(all, 'meshwire.transport.retransmissions', { 'meshwire.peer.id': 'node-b' }), 7);
  t.is(
    value(all, 'meshwire.transport.packets.dropped', {
      'meshwire.peer.id': 'node-b',
      reason: 'bad_auth',
    }),
    2
  );
  t.is(value(all, 'meshwire.transport.srtt', { 'meshwire.peer.id': 'node-b' }), 0.001);
  t.is(tm.connectionCount, 2);
});

test('a connection whose stats() throws is skipped, the scrape still works', async t => {
  const { reader, provider } = await setup();
  const tm = new TransportMetrics();
  tm.attach(provider.getMeter('t'));
  tm.registerConnection('bad', {
    stats() {
      throw new Error('closed');
    },
  });
  tm.registerConnection('good', new FakeConnection({ srttMs: 5 }));
  const all = await points(reader);
  t.is(value(all, 'meshwire.transport.srtt', { 'meshwire.peer.id': 'good' }), 0.005);
  t.is(value(all, 'meshwire.transport.srtt', { 'meshwire.peer.id': 'bad' }), undefined);
});

test('queue depths by queue and attributes', async t => {
  const { reader, provider } = await setup();
  const tm = new TransportMetrics();
  tm.attach(provider.getMeter('t'));
  let depth = 3;
  tm.registerQueue('unresolved', () => depth);
  const off = tm.registerQueue('peer_sender', () => 9, { 'meshwire.peer.id': 'node-b' });
  let all = await points(reader);
  t.is(value(all, 'meshwire.queue.depth', { 'meshwire.queue': 'unresolved' }), 3);
  t.is(
    value(all, 'meshwire.queue.depth', {
      'meshwire.queue': 'peer_sender',
      'meshwire.peer.id': 'node-b',
    }),
    9
  );
  depth = 0;
  off();
  all = await points(reader);
  t.is(value(all, 'meshwire.queue.depth', { 'meshwire.queue': 'unresolved' }), 0);
  // (the SDK may keep reporting a series it saw before; the registry no longer has it)
  t.deepEqual(
    tm.queueDepths().map(q => q.attributes['meshwire.queue']),
    ['unresolved']
  );
});

test('message counters, open streams and the request latency histogram', async t => {
  const { reader, provider } = await setup();
  const mt = new MessagingTelemetry();
  mt.recordRequest(0.5, 'ok'); // before attach: nowhere to go, no throw
  mt.attach(provider.getMeter('t'));
  mt.sentMessages += 3;
  mt.sentRequests += 2;
  mt.receivedLocal += 5;
  mt.receivedFromPeers += 1;
  const close1 = mt.openStream('Subscribe');
  mt.openStream('Subscribe');
  mt.openStream('SendStream');
  close1();
  close1();
  mt.recordRequest(0.0002, 'ok');
  mt.recordRequest(0.003, 'ok');
  mt.recordRequest(2, 'error');
  const all = await points(reader);
  t.is(value(all, 'meshwire.messages.sent', { kind: 'message' }), 3);
  t.is(value(all, 'meshwire.messages.sent', { kind: 'request' }), 2);
  t.is(value(all, 'meshwire.messages.received', { source: 'local' }), 5);
  t.is(value(all, 'meshwire.messages.received', { source: 'peer' }), 1);
  t.is(value(all, 'meshwire.grpc.streams.active', { 'rpc.method': 'Subscribe' }), 1);
  t.is(value(all, 'meshwire.grpc.streams.active', { 'rpc.method': 'SendStream' }), 1);
  const ok = value(all, 'meshwire.request.duration', { outcome: 'ok' }) as Histogram;
  const err = value(all, 'meshwire.request.duration', { outcome: 'error' }) as Histogram;
  t.is(ok.count, 2);
  t.is(err.count, 1);
  t.true(Math.abs((ok.sum ?? 0) - 0.0032) < 1e-9);
  // 0.0002 s falls in (0.0001, 0.00025]: the second bucket.
  t.is(ok.buckets.counts[1], 1);
});
