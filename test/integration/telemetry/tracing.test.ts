/**
 * One node as a separate process exporting over OTLP/gRPC to a real receiver built from
 * the official OpenTelemetry protos (test/helpers/otlp-receiver.ts); the test process
 * is a traced client (its own span, sent as traceparent metadata).
 */
import type { Client, ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import { Client as GrpcClient, Metadata, credentials } from '@grpc/grpc-js';
import type { Span } from '@opentelemetry/api';
import { ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import test from 'ava';
import type { MeshwireClients } from '../../../src/api';
import { createClients } from '../../../src/api';
import type { WireDelivery, WireMessage } from '../../../src/api/proto';
import { subscribed, waitFor } from '../../helpers/node';
import type { OtlpReceiver, ReceivedSpan } from '../../helpers/otlp-receiver';
import { OtlpSpanKind, startOtlpReceiver } from '../../helpers/otlp-receiver';
import type { NodeProcess } from './node-process';
import { scrape, startNodeProcess } from './node-process';

const clientExporter = new InMemorySpanExporter();
const tracer = new BasicTracerProvider({
  spanProcessors: [new SimpleSpanProcessor(clientExporter)],
}).getTracer('test-client');
const w3c = new W3CTraceContextPropagator();

/** gRPC metadata carrying `span` as traceparent, as an instrumented client sends it. */
function tracedMetadata(span: Span): Metadata {
  const md = new Metadata();
  w3c.inject(trace.setSpan(ROOT_CONTEXT, span), md, {
    set: (carrier, key, value) => carrier.set(key, value),
  });
  return md;
}

function call<Res>(client: Client, name: string, req: unknown, md: Metadata): Promise<Res> {
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
let node: NodeProcess;
let clients: MeshwireClients;

test.before(async () => {
  receiver = await startOtlpReceiver();
  node = await startNodeProcess(['--node-id', 'trace-a'], {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    OTEL_BSP_SCHEDULE_DELAY: '50',
    OTEL_SERVICE_NAME: 'meshwire-a',
  });
  clients = createClients(node.grpc);
});

test.after.always(async () => {
  clients?.close();
  await node?.stop();
  await receiver?.close();
});

/**
 * Subscribes and answers every request with the delivered headers (continuing the trace);
 * resolves once the response headers say the subscription is live.
 */
async function responder(
  topic: string,
  seen: WireDelivery[]
): Promise<ClientReadableStream<unknown>> {
  const m = clients.messenger as unknown as Record<string, (...a: unknown[]) => unknown>;
  const stream = m.Subscribe.call(clients.messenger, { topics: [topic] }) as ClientReadableStream<{
    deliveries: WireDelivery[];
  }>;
  stream.on('data', b => {
    for (const d of b.deliveries) {
      seen.push(d);
      if (!d.replyTo) continue;
      const reply = { payload: Buffer.from('pong'), headers: d.message.headers };
      void call(
        clients.messenger,
        'Respond',
        { replyTo: d.replyTo, message: reply },
        new Metadata()
      );
    }
  });
  stream.on('error', () => undefined);
  await subscribed(stream);
  return stream;
}

const byName = (spans: ReceivedSpan[], traceId: string, name: string): ReceivedSpan | undefined =>
  spans.find(s => s.traceId === traceId && s.name === name);

test.serial(
  'Request: client span -> server span (the producer) -> process -> Respond -> reply, one trace',
  async t => {
    const seen: WireDelivery[] = [];
    const sub = await responder('svc.echo', seen);
    const clientSpan = tracer.startSpan('client Request svc.echo', { kind: SpanKind.CLIENT });
    const res = await call<{ reply: WireMessage; responderPeer: string }>(
      clients.messenger,
      'Request',
      { message: { topic: 'svc.echo', payload: Buffer.from('ping'), headers: {} } },
      tracedMetadata(clientSpan)
    ).finally(() => clientSpan.end());
    sub.cancel();
    const traceId = clientSpan.spanContext().traceId;
    t.is(res.reply.payload.toString(), 'pong');

    const names = ['process svc.echo', 'respond'];
    await receiver.waitFor(
      spans =>
        names.every(n => byName(spans, traceId, n)) &&
        spans.some(s => s.traceId === traceId && s.name.endsWith('Messenger/Request'))
    );
    const spans = receiver.spans;
    const server = spans.find(s => s.traceId === traceId && s.name.endsWith('Messenger/Request'))!;
    const [processSpan, respond] = names.map(n => byName(spans, traceId, n)!);

    // Parent links: client -> server (the message's producer) -> process -> respond.
    t.is(server.kind, OtlpSpanKind.SERVER);
    t.is(server.parentSpanId, clientSpan.spanContext().spanId, 'incoming traceparent honoured');
    t.is(processSpan.parentSpanId, server.spanId);
    t.is(respond.parentSpanId, processSpan.spanId);
    t.deepEqual([processSpan.kind, respond.kind], [OtlpSpanKind.CONSUMER, OtlpSpanKind.PRODUCER]);
    // The server span is the producer: no send span; one responder: no receive span.
    t.false(spans.some(s => s.traceId === traceId && /^(send|receive) /.test(s.name)));
    t.is(server.service, 'meshwire-a');
    // Each node is told apart in the trace store: service.instance.id is the node id.
    t.is(server.serviceInstanceId, 'trace-a');

    // Attributes (messaging semantic conventions), the producer's on the server span.
    t.like(server.attributes, {
      'rpc.system': 'grpc',
      'rpc.method': 'Request',
      'messaging.system': 'meshwire',
      'messaging.operation.type': 'send',
      'messaging.destination.name': 'svc.echo',
      'messaging.message.body.size': 4,
      'meshwire.source_peer.id': 'trace-a',
      'meshwire.request': true,
    });
    t.truthy(server.attributes['messaging.message.id']);
    t.is(processSpan.attributes['messaging.message.id'], server.attributes['messaging.message.id']);
    t.like(processSpan.attributes, {
      'messaging.operation.type': 'process',
      'meshwire.source_peer.id': 'trace-a',
      'meshwire.request': true,
    });
    t.truthy(processSpan.attributes['messaging.destination.subscription.name']);
    t.like(respond.attributes, {
      'messaging.operation.name': 'respond',
      'messaging.message.body.size': 4,
    });
    // The Respond RPC has its own server span (no traceparent metadata): it is linked.
    const respondRpc = spans.find(
      s => s.name.endsWith('Messenger/Respond') && respond.links.some(l => l.spanId === s.spanId)
    );
    t.truthy(respondRpc, 'respond links the Respond RPC span');

    // The responder saw the trace in Delivery.message.headers, at the process span.
    const delivered = seen.find(
      d =>
        d.message.topic === 'svc.echo' &&
        parentOf(d.message.headers.traceparent).traceId === traceId
    );
    t.truthy(delivered);
    t.is(parentOf(delivered!.message.headers.traceparent).spanId, processSpan.spanId);
    // The reply comes back in the same trace, at the respond span.
    t.deepEqual(parentOf(res.reply.headers.traceparent), { traceId, spanId: respond.spanId });
  }
);

test.serial('Send: deliveries carry a traceparent with the sender’s trace id', async t => {
  const seen: WireDelivery[] = [];
  const sub = await responder('evt.>', seen);
  const senderSpan = tracer.startSpan('client Send', { kind: SpanKind.CLIENT });
  const traceId = senderSpan.spanContext().traceId;
  const r = await call<{ delivered: number }>(
    clients.messenger,
    'Send',
    {
      message: { topic: 'evt.created', payload: Buffer.from('e1'), headers: { app: 'kept' } },
      ack: 'DELIVERED',
    },
    tracedMetadata(senderSpan)
  );
  senderSpan.end();
  t.is(r.delivered, 1);
  await waitFor(() => seen.length === 1, 5000, 'the delivery');
  sub.cancel();
  for (const d of seen) {
    t.is(parentOf(d.message.headers.traceparent).traceId, traceId);
    t.is(d.message.headers.app, 'kept');
  }
  await receiver.waitFor(spans => Boolean(byName(spans, traceId, 'process evt.created')));
  // The Send call's server span is the message's producer: receive is its child.
  const receive = byName(receiver.spans, traceId, 'receive evt.created')!;
  const server = receiver.spans.find(s => s.spanId === receive.parentSpanId)!;
  t.true(server.name.endsWith('Messenger/Send'));
  t.is(server.parentSpanId, senderSpan.spanContext().spanId);
  t.like(server.attributes, {
    'messaging.operation.type': 'send',
    'messaging.destination.name': 'evt.created',
  });
  t.is(byName(receiver.spans, traceId, 'process evt.created')!.parentSpanId, receive.spanId);
  t.is(byName(receiver.spans, traceId, 'send evt.created'), undefined);
});

test.serial('/metrics: documented names and units', async t => {
  // A message nobody subscribes to is dropped for reason no_subscribers.
  await call(
    clients.messenger,
    'Send',
    { message: { topic: 'nobody.listens', payload: Buffer.from('x'), headers: {} } },
    new Metadata()
  );
  const text = await scrape(node.metricsPort);
  // Prometheus name -> OTel unit, as docs/observability.md lists them.
  const expected: Record<string, [type: string, unit: string]> = {
    meshwire_messages_sent_total: ['counter', '{message}'],
    meshwire_messages_received_total: ['counter', '{message}'],
    meshwire_messages_delivered_total: ['counter', '{message}'],
    meshwire_messages_dropped_total: ['counter', '{message}'],
    meshwire_request_duration_seconds: ['histogram', 's'],
    meshwire_subscriber_queue_depth: ['gauge', '{message}'],
    meshwire_subscriptions_active: ['gauge', '{subscription}'],
    meshwire_requests_pending: ['gauge', '{request}'],
    meshwire_grpc_streams_active: ['gauge', '{stream}'],
  };
  for (const [name, [type, unit]] of Object.entries(expected)) {
    t.regex(text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), name);
    t.true(text.includes(`# UNIT ${name} ${unit}\n`), `${name} unit ${unit}`);
  }
  t.regex(text, /^meshwire_request_duration_seconds_count\{[^}]*outcome="ok"[^}]*\} [1-9]/m);
  t.regex(text, /^meshwire_request_duration_seconds_bucket\{[^}]*le="0.001"[^}]*\} \d+/m);
  t.regex(text, /^meshwire_messages_sent_total\{[^}]*kind="request"[^}]*\} [1-9]/m);
  t.regex(text, /^meshwire_messages_received_total\{[^}]*source="local"[^}]*\} [1-9]/m);
  t.regex(text, /^meshwire_messages_dropped_total\{[^}]*reason="no_subscribers"[^}]*\} [1-9]/m);
  // The Subscribe streams of the earlier tests were cancelled: none is counted as open.
  t.regex(text, /^meshwire_grpc_streams_active\{[^}]*rpc_method="Subscribe"[^}]*\} 0$/m);
});

test.serial('logs of the traced node are JSON with the node id, and say tracing is on', t => {
  const parsed = node.lines
    .filter(l => l.startsWith('{'))
    .map(l => JSON.parse(l) as Record<string, unknown>);
  t.true(parsed.length > 0);
  t.true(parsed.every(l => l.node_id === 'trace-a'));
  t.true(parsed.some(l => l.msg === 'exporting traces over OTLP'));
  // No line per message at info level: the handful of start-up lines only.
  t.true(parsed.filter(l => l.level === 'info').length < 10);
});

test.serial(
  'gRPC server spans: RPC attributes, status code, error status; health checks untraced',
  async t => {
    const clientSpan = tracer.startSpan('client Request nobody.home', { kind: SpanKind.CLIENT });
    const err = await call(
      clients.messenger,
      'Request',
      { message: { topic: 'nobody.home', payload: Buffer.from('x'), headers: {} }, timeoutMs: 500 },
      tracedMetadata(clientSpan)
    ).then(
      () => undefined,
      (e: ServiceError) => e
    );
    clientSpan.end();
    t.is(err?.code, 14, 'no responders: UNAVAILABLE');
    // a health check between the calls: must not produce a span
    const health = new GrpcClient(node.grpc, credentials.createInsecure());
    await new Promise<void>((resolve, reject) =>
      health.makeUnaryRequest(
        '/grpc.health.v1.Health/Check',
        () => Buffer.alloc(0), // HealthCheckRequest { service: "" }
        (b: Buffer) => b,
        {},
        (e: ServiceError | null) => (e ? reject(e) : resolve())
      )
    );
    health.close();
    // a traced Send after the health check: once its span is in, a health span would be too
    const after = tracer.startSpan('client Send after health', { kind: SpanKind.CLIENT });
    await call(
      clients.messenger,
      'Send',
      { message: { topic: 'after.health', payload: Buffer.from('x'), headers: {} } },
      tracedMetadata(after)
    );
    after.end();
    const traceId = clientSpan.spanContext().traceId;
    const afterId = after.spanContext().traceId;
    await receiver.waitFor(
      spans =>
        spans.some(s => s.traceId === traceId && s.name === 'messaging.v1.Messenger/Request') &&
        spans.some(s => s.traceId === afterId && s.name === 'messaging.v1.Messenger/Send')
    );
    const server = receiver.spans.find(
      s => s.traceId === traceId && s.name === 'messaging.v1.Messenger/Request'
    )!;
    t.is(server.kind, OtlpSpanKind.SERVER);
    t.like(server.attributes, {
      'rpc.system': 'grpc',
      'rpc.service': 'messaging.v1.Messenger',
      'rpc.method': 'Request',
      'rpc.grpc.status_code': 14,
    });
    t.is(server.status.code, 2, 'UNAVAILABLE is a server error: span status ERROR');
    t.regex(server.status.message, /no responders/);
    t.false(
      receiver.spans.some(s => s.name.includes('grpc.health')),
      'health checks are not traced'
    );
  }
);
