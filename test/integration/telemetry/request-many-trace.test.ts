/**
 * RequestMany traced end to end: one node process exporting over OTLP/gRPC to a real
 * receiver (test/helpers/otlp-receiver.ts); the test is a traced client. One trace: the
 * RequestMany server span, its `send` producer span, each responder's `process` and
 * `respond`, and one `reply <topic>` span per reply under the producer span.
 */
import type { ClientReadableStream } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import { ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import test from 'ava';
import type { MeshwireClients } from '../../../src/api';
import { createClients } from '../../../src/api';
import type { WireDelivery, WireMessage } from '../../../src/api/proto';
import { subscribed, unary } from '../../helpers/node';
import { OtlpSpanKind, startOtlpReceiver } from '../../helpers/otlp-receiver';
import { startNodeProcess } from './node-process';

test('RequestMany: one trace, one reply span per reply under the producer span', async t => {
  const receiver = await startOtlpReceiver();
  const node = await startNodeProcess(['--node-id', 'trace-many'], {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    OTEL_BSP_SCHEDULE_DELAY: '50',
    OTEL_SERVICE_NAME: 'meshwire-many',
  });
  const clients: MeshwireClients = createClients(node.grpc);
  const m = clients.messenger as unknown as Record<string, (...a: unknown[]) => unknown>;
  const streams: Array<ClientReadableStream<unknown>> = [];
  try {
    // Two responders answering with the delivered headers (continuing the trace).
    for (const word of ['one', 'two']) {
      const s = m.Subscribe.call(clients.messenger, {
        topics: ['svc.many'],
      }) as ClientReadableStream<{ deliveries: WireDelivery[] }>;
      s.on('data', b => {
        for (const d of b.deliveries) {
          void unary(clients.messenger, 'Respond', {
            replyTo: d.replyTo,
            message: { payload: Buffer.from(word), headers: d.message.headers },
          }).catch(() => undefined);
        }
      });
      s.on('error', () => undefined);
      await subscribed(s);
      streams.push(s);
    }
    const clientSpan = new BasicTracerProvider()
      .getTracer('test-client')
      .startSpan('client RequestMany', { kind: SpanKind.CLIENT });
    const md = new Metadata();
    new W3CTraceContextPropagator().inject(trace.setSpan(ROOT_CONTEXT, clientSpan), md, {
      set: (carrier, key, value) => carrier.set(key, value),
    });
    const replies: Array<{ reply: WireMessage; responderPeer: string }> = [];
    await new Promise<void>((resolve, reject) => {
      const call = m.RequestMany.call(
        clients.messenger,
        { message: { topic: 'svc.many', payload: Buffer.from('q') }, timeoutMs: 20_000 },
        md
      ) as ClientReadableStream<{ reply: WireMessage; responderPeer: string }>;
      call.on('data', r => replies.push(r));
      call.on('error', reject);
      call.on('end', resolve);
    });
    clientSpan.end();
    t.deepEqual(replies.map(r => r.reply.payload.toString()).sort(), ['one', 'two']);

    const traceId = clientSpan.spanContext().traceId;
    const inTrace = () => receiver.spans.filter(s => s.traceId === traceId);
    await receiver.waitFor(
      () =>
        inTrace().filter(s => s.name === 'reply svc.many').length === 2 &&
        inTrace().filter(s => s.name === 'respond').length === 2 &&
        inTrace().some(s => s.name.endsWith('Messenger/RequestMany')) &&
        inTrace().some(s => s.name === 'send svc.many'),
      20_000
    );
    const spans = inTrace();
    const server = spans.find(s => s.name.endsWith('Messenger/RequestMany'))!;
    const producer = spans.find(s => s.name === 'send svc.many')!;
    const replySpans = spans.filter(s => s.name === 'reply svc.many');
    const responds = spans.filter(s => s.name === 'respond');
    t.is(server.parentSpanId, clientSpan.spanContext().spanId);
    t.is(producer.parentSpanId, server.spanId);
    t.is(producer.kind, OtlpSpanKind.PRODUCER);
    t.is(producer.attributes['meshwire.request'], true);
    for (const r of replySpans) {
      t.is(r.parentSpanId, producer.spanId, 'each reply span is a child of the producer');
      t.is(r.kind, OtlpSpanKind.CONSUMER);
      t.is(r.attributes['meshwire.responder_peer.id'], 'trace-many');
      // Linked to the responder's own respond span.
      t.is(r.links.length, 1);
      t.true(responds.some(p => p.spanId === r.links[0].spanId));
    }
    t.is(spans.filter(s => s.name === 'process svc.many').length, 2);
  } finally {
    for (const s of streams) s.cancel();
    clients.close();
    await node.stop();
    await receiver.close();
  }
});
