/**
 * Two nodes as separate processes (static peers on loopback), both exporting over
 * OTLP/gRPC to one real receiver: a Request from a traced client through node A to a
 * responder on node B is ONE trace; with datagram loss injected by nftables, the
 * transport counters on /metrics move. The two nodes run the AEAD in different backends.
 */
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import type { Client, ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import type { Span } from '@opentelemetry/api';
import { ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import test from 'ava';
import { systemTool } from '../../../bench/common/system-tool';
import type { MeshwireClients } from '../../../src/api';
import { createClients } from '../../../src/api';
import type { WireDelivery, WireMessage } from '../../../src/api/proto';
import { waitForPeersConnected } from '../../helpers/cluster';
import { subscribed } from '../../helpers/node';
import { waitFor } from '../../helpers/wait';
import type { OtlpReceiver, ReceivedSpan } from '../../helpers/otlp-receiver';
import { OtlpSpanKind, startOtlpReceiver } from '../../helpers/otlp-receiver';
import type { NodeProcess } from './node-process';
import { freeUdpPorts, scrape, startPeeredPair } from './node-process';

const tracer = new BasicTracerProvider().getTracer('test-client');
const w3c = new W3CTraceContextPropagator();

function tracedMetadata(span: Span): Metadata {
  const md = new Metadata();
  w3c.inject(trace.setSpan(ROOT_CONTEXT, span), md, { set: (c, k, v) => c.set(k, v) });
  return md;
}

function call<Res>(client: Client, name: string, req: unknown, md = new Metadata()): Promise<Res> {
  const fn = (client as unknown as Record<string, (...a: unknown[]) => unknown>)[name].bind(client);
  return new Promise((resolve, reject) =>
    fn(req, md, { deadline: Date.now() + 10_000 }, (err: ServiceError | null, res: Res) =>
      err ? reject(err) : resolve(res)
    )
  );
}

const parentOf = (tp: string | undefined): { traceId: string; spanId: string } => {
  const [, traceId, spanId] = (tp ?? '').split('-');
  return { traceId, spanId };
};

let receiver: OtlpReceiver;
let a: NodeProcess;
let b: NodeProcess;
let ca: MeshwireClients;
let cb: MeshwireClients;
let udpA: number;
let udpB: number;

test.before(async () => {
  receiver = await startOtlpReceiver();
  [udpA, udpB] = await freeUdpPorts(2);
  const env = (service: string): Record<string, string> => ({
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    OTEL_BSP_SCHEDULE_DELAY: '50',
    OTEL_SERVICE_NAME: service,
  });
  [a, b] = await startPeeredPair(
    [udpA, udpB],
    id => env(id === 'node-a' ? 'meshwire-a' : 'meshwire-b'),
    // node-a runs the AEAD in OpenSSL through our addon and the batched UDP driver
    // (auto), node-b node:crypto and node:dgram: every test here crosses the two
    id => (id === 'node-b' ? ['--aead-backend', 'node', '--udp-driver', 'dgram'] : [])
  );
  ca = createClients(a.grpc);
  cb = createClients(b.grpc);
  // Requests go out on A's link to B, replies come back on B's link to A.
  await waitForPeersConnected(ca.peers, ['node-b'], 20_000);
  await waitForPeersConnected(cb.peers, ['node-a'], 20_000);
});

test.after.always(async () => {
  ca?.close();
  cb?.close();
  await Promise.all([a?.stop(), b?.stop()]);
  await receiver?.close();
});

/**
 * A responder on `clients`' node answering with the delivered headers; resolves once the
 * response headers say the subscription is live.
 */
async function responder(
  clients: MeshwireClients,
  topic: string,
  seen: WireDelivery[]
): Promise<ClientReadableStream<unknown>> {
  const m = clients.messenger as unknown as Record<string, (...a: unknown[]) => unknown>;
  const stream = m.Subscribe.call(clients.messenger, { topics: [topic] }) as ClientReadableStream<{
    deliveries: WireDelivery[];
  }>;
  stream.on('data', batch => {
    for (const d of batch.deliveries) {
      seen.push(d);
      if (!d.replyTo) continue;
      const reply = {
        payload: Buffer.from(`re:${d.message.payload.toString()}`),
        headers: d.message.headers,
      };
      void call(clients.messenger, 'Respond', { replyTo: d.replyTo, message: reply }).catch(
        () => undefined
      );
    }
  });
  stream.on('error', () => undefined);
  await subscribed(stream);
  return stream;
}

const named = (spans: ReceivedSpan[], traceId: string, name: string): ReceivedSpan | undefined =>
  spans.find(s => s.traceId === traceId && s.name === name);

test.serial(
  'Request from a traced client through node A to a responder on node B: one trace',
  async t => {
    const seen: WireDelivery[] = [];
    const sub = await responder(cb, 'svc.remote', seen);
    const clientSpan = tracer.startSpan('client Request svc.remote', { kind: SpanKind.CLIENT });
    const res = await call<{ reply: WireMessage; responderPeer: string }>(
      ca.messenger,
      'Request',
      {
        target: { peerId: 'node-b' },
        message: { topic: 'svc.remote', payload: Buffer.from('ping'), headers: {} },
        timeoutMs: 2000,
      },
      tracedMetadata(clientSpan)
    ).finally(() => clientSpan.end());
    sub.cancel();
    t.is(res.responderPeer, 'node-b');
    t.is(res.reply.payload.toString(), 're:ping');
    const traceId = clientSpan.spanContext().traceId;
    const names = ['process svc.remote', 'respond'];
    await receiver.waitFor(
      spans =>
        names.every(n => named(spans, traceId, n)) &&
        spans.some(s => s.traceId === traceId && s.name.endsWith('Messenger/Request'))
    );
    const spans = receiver.spans;
    const server = spans.find(s => s.traceId === traceId && s.name.endsWith('Messenger/Request'))!;
    const [processSpan, respond] = names.map(n => named(spans, traceId, n)!);
    // client -> server span on A (the producer) -> delivery on B -> respond on B
    t.is(server.parentSpanId, clientSpan.spanContext().spanId);
    t.is(processSpan.parentSpanId, server.spanId);
    t.is(respond.parentSpanId, processSpan.spanId);
    t.false(spans.some(s => s.traceId === traceId && /^(send|receive) /.test(s.name)));
    t.deepEqual(
      [server, processSpan, respond].map(s => s.service),
      ['meshwire-a', 'meshwire-b', 'meshwire-b']
    );
    t.deepEqual(
      [server.kind, processSpan.kind, respond.kind],
      [OtlpSpanKind.SERVER, OtlpSpanKind.CONSUMER, OtlpSpanKind.PRODUCER]
    );
    t.like(server.attributes, {
      'messaging.system': 'meshwire',
      'messaging.destination.name': 'svc.remote',
      'meshwire.source_peer.id': 'node-a',
      'meshwire.peer.id': 'node-b',
    });
    t.like(processSpan.attributes, {
      'meshwire.source_peer.id': 'node-a',
      'messaging.message.id': server.attributes['messaging.message.id'],
    });
    // The server span on A covers B's work: it ends when the reply is back.
    t.true(server.endNs >= respond.endNs);
    const delivered = seen.find(d => parentOf(d.message.headers.traceparent).traceId === traceId);
    t.is(parentOf(delivered?.message.headers.traceparent).spanId, processSpan.spanId);
    t.deepEqual(parentOf(res.reply.headers.traceparent), { traceId, spanId: respond.spanId });
  }
);

test.serial(
  'datagram loss (nftables): retransmission, loss and drop counters move on /metrics',
  async t => {
    const seen: WireDelivery[] = [];
    const sub = await responder(cb, 'svc.lossy', seen);
    // One request before the loss starts: the responder answers it.
    await call(ca.messenger, 'Request', {
      target: { peerId: 'node-b' },
      message: { topic: 'svc.lossy', payload: Buffer.from('w'), headers: {} },
      timeoutMs: 2000,
    });
    const table = `meshwire_tele_${process.pid}`;
    const nft = (...args: string[]): void => {
      execFileSync(systemTool('nft'), args, { stdio: 'pipe' });
    };
    nft('add', 'table', 'inet', table);
    try {
      nft('add', 'chain', 'inet', table, 'out', '{ type filter hook output priority 0 ; }');
      // 10% of the datagrams between the two nodes' UDP ports vanish.
      nft(
        'add',
        'rule',
        'inet',
        table,
        'out',
        'udp',
        'dport',
        `{ ${udpA}, ${udpB} }`,
        'numgen',
        'random',
        'mod',
        '100',
        '<',
        '10',
        'drop'
      );
      const payload = Buffer.alloc(4000, 1);
      let ok = 0;
      for (let round = 0; round < 6; round++) {
        const results = await Promise.allSettled(
          Array.from({ length: 20 }, (_, i) =>
            call(ca.messenger, 'Request', {
              target: { peerId: 'node-b' },
              message: { topic: 'svc.lossy', payload, headers: { i: String(i) } },
              timeoutMs: 5000,
            })
          )
        );
        ok += results.filter(r => r.status === 'fulfilled').length;
      }
      t.true(ok >= 114, `${ok}/120 requests answered under 10% loss`);
    } finally {
      nft('delete', 'table', 'inet', table);
      sub.cancel();
    }
    // Datagrams that fail authentication are dropped and counted by reason.
    const junk = createSocket('udp4');
    await new Promise<void>(resolve =>
      junk.send(Buffer.alloc(1200, 0x5a), udpB, '127.0.0.1', () => resolve())
    );
    junk.close();
    await waitFor('B to count the junk datagram', async () =>
      /^meshwire_transport_datagrams_dropped_total\{[^}]*\} [1-9]/m.test(
        await scrape(b.metricsPort)
      )
    );

    const textA = await scrape(a.metricsPort);
    const textB = await scrape(b.metricsPort);
    const sum = (text: string, name: string, filter = ''): number => {
      let total = 0;
      for (const line of text.split('\n')) {
        if (line.startsWith(`${name}{`) && line.includes(filter))
          total += Number(line.split(' ').pop());
      }
      return total;
    };
    const retrans =
      sum(textA, 'meshwire_transport_retransmissions_total') +
      sum(textB, 'meshwire_transport_retransmissions_total');
    const lost =
      sum(textA, 'meshwire_transport_packets_lost_total') +
      sum(textB, 'meshwire_transport_packets_lost_total');
    t.true(retrans > 0, `retransmissions ${retrans}`);
    t.true(lost > 0, `packets lost ${lost}`);
    t.regex(
      textA,
      /^meshwire_transport_srtt_seconds\{[^}]*meshwire_peer_id="node-b"[^}]*\} [0-9.e-]+$/m
    );
    t.regex(textA, /^meshwire_transport_cwnd_bytes\{[^}]*meshwire_peer_id="node-b"[^}]*\} [1-9]/m);
    t.true(textA.includes('# UNIT meshwire_transport_srtt_seconds s\n'));
    t.true(textA.includes('# UNIT meshwire_transport_cwnd_bytes By\n'));
    t.true(textA.includes('# UNIT meshwire_transport_retransmissions_total {packet}\n'));
    t.true(sum(textB, 'meshwire_transport_datagrams_dropped_total') > 0, 'junk datagram counted');
    t.regex(textA, /^meshwire_transport_info\{[^}]*aead_backend="openssl"[^}]*\} 1$/m);
    t.regex(textB, /^meshwire_transport_info\{[^}]*aead_backend="node:crypto"[^}]*\} 1$/m);
    t.regex(textB, /^meshwire_transport_info\{[^}]*aead="chacha20-poly1305"[^}]*\} 1$/m);
    t.regex(textA, /^meshwire_transport_info\{[^}]*udp_driver="batch"[^}]*\} 1$/m);
    t.regex(textB, /^meshwire_transport_info\{[^}]*udp_driver="dgram"[^}]*\} 1$/m);
    t.true(sum(textB, 'meshwire_messages_received_total', 'source="peer"') > 0);
    // The producer spans (each Request's server span) say where each request went and what
    // the transport did meanwhile.
    const isSend = (x: ReceivedSpan): boolean =>
      x.name === 'messaging.v1.Messenger/Request' &&
      x.attributes['messaging.destination.name'] === 'svc.lossy';
    await receiver.waitFor(spans =>
      spans.some(x => isSend(x) && x.events.some(e => e.name === 'retransmitted'))
    );
    const sends = receiver.spans.filter(isSend);
    t.true(sends.every(x => x.attributes['meshwire.peer.address'] === `127.0.0.1:${udpB}`));
    t.true(sends.some(x => Number(x.attributes['meshwire.peer.srtt_ms']) > 0));
    t.true(sends.every(x => x.attributes['meshwire.peer.state'] === 'connected'));
    const ev = sends.flatMap(x => x.events).find(e => e.name === 'retransmitted');
    t.true(Number(ev?.attributes['meshwire.retransmissions']) > 0);
  }
);
