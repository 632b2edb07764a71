import { Writable } from 'node:stream';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { node as traceNode, tracing } from '@opentelemetry/sdk-node';
import test from 'ava';
import {
  addSpanEvent,
  createLogger,
  endProducerSpan,
  endSpan,
  offerServerSpan,
  setMessagingTracing,
  setSpanAttributes,
  startProducerSpan,
  startReceiveSpan,
  startRespondSpan,
  traceDelivery,
  traceSend,
} from '../../../src/telemetry';
import type { TracedMessage } from '../../../src/telemetry';

// One tracer provider for the file (ava runs each file in its own process): W3C trace
// context and baggage propagators, AsyncLocalStorage context, spans kept in memory.
const exporter = new tracing.InMemorySpanExporter();
const provider = new traceNode.NodeTracerProvider({
  spanProcessors: [new tracing.SimpleSpanProcessor(exporter)],
});
provider.register();
const tracer = trace.getTracer('test');

test.serial.beforeEach(() => {
  exporter.reset();
  setMessagingTracing(true);
});

const msg = (over: Partial<TracedMessage> = {}): TracedMessage => ({
  id: 'm1',
  topic: 'orders.created',
  payload: Buffer.from('hello'),
  headers: {},
  ...over,
});

function finished(name: string): tracing.ReadableSpan {
  const s = exporter.getFinishedSpans().find(x => x.name === name);
  if (!s) throw new Error(`no finished span "${name}"`);
  return s;
}

const spanIdOf = (traceparent: string | undefined): string => (traceparent ?? '').split('-')[2];
const traceIdOf = (traceparent: string | undefined): string => (traceparent ?? '').split('-')[1];

test.serial('tracing off: nothing is created and headers stay the same object', t => {
  setMessagingTracing(false);
  const m = msg({ headers: { a: '1' } });
  const before = m.headers;
  t.is(startProducerSpan(m, { localPeer: 'a' }), undefined);
  t.is(startReceiveSpan(m, { localPeer: 'a', sourcePeer: 'a' }), undefined);
  t.is(startRespondSpan(m, 'a'), undefined);
  t.is(
    traceDelivery(m, { subscriptionId: 's1', queueGroup: '', sourcePeer: 'a', request: false }),
    m
  );
  addSpanEvent(m, 'expired');
  endProducerSpan(m);
  t.is(m.headers, before);
  t.deepEqual(m.headers, { a: '1' });
  t.is(exporter.getFinishedSpans().length, 0);
});

test.serial('producer span: child of the active span, semconv attributes, context injected', t => {
  const server = tracer.startSpan('grpc server', { kind: SpanKind.SERVER });
  const m = msg({ headers: { app: 'x' } });
  const span = context.with(trace.setSpan(context.active(), server), () =>
    startProducerSpan(m, { localPeer: 'node-a', target: { peerId: 'node-b' } })
  );
  t.truthy(span);
  endSpan(span);
  server.end();
  const p = finished('send orders.created');
  t.is(p.kind, SpanKind.PRODUCER);
  t.is(p.parentSpanContext?.spanId, server.spanContext().spanId);
  t.is(p.spanContext().traceId, server.spanContext().traceId);
  t.like(p.attributes, {
    'messaging.system': 'meshwire',
    'messaging.operation.type': 'send',
    'messaging.operation.name': 'send',
    'messaging.destination.name': 'orders.created',
    'messaging.message.id': 'm1',
    'messaging.message.body.size': 5,
    'meshwire.source_peer.id': 'node-a',
    'meshwire.peer.id': 'node-b',
  });
  t.is(spanIdOf(m.headers.traceparent), p.spanContext().spanId);
  t.is(traceIdOf(m.headers.traceparent), server.spanContext().traceId);
  t.is(m.headers.app, 'x', 'application headers are kept');
});

test.serial('send -> receive -> process -> respond form one chain; baggage travels', t => {
  const root = tracer.startSpan('client');
  const bag = propagation.createBaggage({ tenant: { value: 'acme' } });
  const ctx = propagation.setBaggage(trace.setSpan(context.active(), root), bag);
  const m = msg();
  const producer = context.with(ctx, () => startProducerSpan(m, { localPeer: 'a' }));
  t.true(m.headers.baggage?.includes('tenant=acme'));
  // The receiving node (context.active() is empty there): parent comes from the headers.
  const rx = startReceiveSpan(m, { localPeer: 'b', sourcePeer: 'a' });
  t.truthy(rx);
  t.not(rx!.message, m, 'the routed message is a copy');
  t.is(spanIdOf(m.headers.traceparent), producer!.spanContext().spanId, 'original untouched');
  rx!.end(1);
  endSpan(producer);
  const delivered = traceDelivery(rx!.message, {
    subscriptionId: 's7',
    queueGroup: 'workers',
    sourcePeer: 'a',
    request: true,
  });
  t.true(delivered.headers.baggage?.includes('tenant=acme'));
  const reply = msg({
    id: 'r1',
    topic: '',
    payload: Buffer.from('ok'),
    headers: delivered.headers,
  });
  const rpc = tracer.startSpan('Respond rpc');
  const respond = context.with(trace.setSpan(context.active(), rpc), () =>
    startRespondSpan(reply, 'b')
  );
  endSpan(respond);
  rpc.end();
  root.end();

  const send = finished('send orders.created');
  const receive = finished('receive orders.created');
  const proc = finished('process orders.created');
  const resp = finished('respond');
  const traceId = root.spanContext().traceId;
  for (const s of [send, receive, proc, resp]) t.is(s.spanContext().traceId, traceId, s.name);
  t.is(send.parentSpanContext?.spanId, root.spanContext().spanId);
  t.is(receive.parentSpanContext?.spanId, send.spanContext().spanId);
  t.is(proc.parentSpanContext?.spanId, receive.spanContext().spanId);
  t.is(resp.parentSpanContext?.spanId, proc.spanContext().spanId);
  t.is(receive.kind, SpanKind.CONSUMER);
  t.is(proc.kind, SpanKind.CONSUMER);
  t.is(resp.kind, SpanKind.PRODUCER);
  t.like(receive.attributes, {
    'messaging.operation.type': 'receive',
    'meshwire.source_peer.id': 'a',
    'meshwire.peer.id': 'b',
    'meshwire.delivered_count': 1,
  });
  t.like(proc.attributes, {
    'messaging.operation.type': 'process',
    'messaging.destination.subscription.name': 's7',
    'messaging.consumer.group.name': 'workers',
  });
  t.like(resp.attributes, { 'messaging.operation.name': 'respond', 'messaging.message.id': 'r1' });
  t.deepEqual(
    resp.links.map(l => l.context.spanId),
    [rpc.spanContext().spanId],
    'the Respond RPC (another trace) is linked'
  );
  t.is(spanIdOf(reply.headers.traceparent), resp.spanContext().spanId, 'reply carries respond');
});

test.serial('respond without trace headers is a child of the active span', t => {
  const rpc = tracer.startSpan('Respond rpc');
  const reply = msg({ headers: {} });
  endSpan(context.with(trace.setSpan(context.active(), rpc), () => startRespondSpan(reply, 'b')));
  rpc.end();
  const resp = finished('respond');
  t.is(resp.parentSpanContext?.spanId, rpc.spanContext().spanId);
  t.is(resp.links.length, 0);
});

test.serial('deliveries without a trace context are passed through unchanged', t => {
  const m = msg({ headers: { a: 'b' } });
  t.is(
    traceDelivery(m, { subscriptionId: 's', queueGroup: '', sourcePeer: 'x', request: false }),
    m
  );
  t.is(exporter.getFinishedSpans().length, 0);
});

test.serial('lower layers reach the producer span through the message', t => {
  const m = msg();
  startProducerSpan(m, { localPeer: 'a', target: { peerId: 'b' } });
  addSpanEvent(m, 'waited_for_peer_resolution', { 'meshwire.wait_ms': 12 });
  setSpanAttributes(m, { 'network.peer.address': '10.0.0.2:7401', 'meshwire.peer.srtt_ms': 0.4 });
  addSpanEvent(m, 'expired');
  endProducerSpan(m, Object.assign(new Error('ttl'), { code: 'UNAVAILABLE' }));
  endProducerSpan(m); // idempotent
  addSpanEvent(m, 'late'); // after the end: nowhere to go, no throw
  const s = finished('send orders.created');
  t.deepEqual(
    s.events.map(e => e.name),
    ['waited_for_peer_resolution', 'expired', 'exception']
  );
  t.is(s.events[0].attributes?.['meshwire.wait_ms'], 12);
  t.is(s.attributes['network.peer.address'], '10.0.0.2:7401');
  t.is(s.status.code, SpanStatusCode.ERROR);
  t.is(s.attributes['error.type'], 'UNAVAILABLE');
  t.is(exporter.getFinishedSpans().length, 1);
});

test.serial('logs inside a span carry trace_id and span_id, child loggers too', t => {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  const log = createLogger({ level: 'debug', base: { node_id: 'n1' }, destination });
  const child = log.child({ component: 'dispatch' });
  log.info('outside');
  const span = tracer.startSpan('work');
  context.with(trace.setSpan(context.active(), span), () => {
    log.info('inside');
    child.debug('inside child');
  });
  span.end();
  t.is(lines.length, 3);
  t.is(lines[0].trace_id, undefined);
  for (const l of lines.slice(1)) {
    t.is(l.trace_id, span.spanContext().traceId);
    t.is(l.span_id, span.spanContext().spanId);
    t.is(l.node_id, 'n1');
  }
  t.is(lines[2].component, 'dispatch');
});

test.serial('process span: only for sampled traces; an unsampled delivery keeps its headers', t => {
  const init = { subscriptionId: 's1', queueGroup: '', sourcePeer: 'a', request: false };
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const unsampled = msg({ headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-00`, x: '1' } });
  t.is(traceDelivery(unsampled, init), unsampled, 'same message, no new context');
  t.is(unsampled.headers.traceparent, `00-${traceId}-00f067aa0ba902b7-00`);
  const sampled = msg({ headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } });
  const out = traceDelivery(sampled, init);
  t.not(out, sampled);
  t.is(traceIdOf(out.headers.traceparent), traceId, 'same trace');
  t.not(
    spanIdOf(out.headers.traceparent),
    '00f067aa0ba902b7',
    'the process span is the parent now'
  );
  t.is(finished('process orders.created').parentSpanContext?.spanId, '00f067aa0ba902b7');
  t.is(exporter.getFinishedSpans().length, 1, 'no span for the unsampled delivery');
});

test.serial('unsampled parent: no span anywhere, the headers carry the decision on', t => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const parent = trace.wrapSpanContext({ traceId, spanId: '00f067aa0ba902b7', traceFlags: 0 });
  const m = msg({ headers: { app: 'x' } });
  const before = m.headers;
  let ran = false;
  const out = context.with(trace.setSpan(context.active(), parent), () =>
    traceSend(m, { localPeer: 'a', request: true }, () => {
      ran = true;
      return 7;
    })
  );
  t.is(out, 7);
  t.true(ran);
  t.is(m.headers.traceparent, `00-${traceId}-00f067aa0ba902b7-00`, 'the parent, unsampled');
  t.is(m.headers.app, 'x');
  t.false('traceparent' in before, "the caller's map is not changed");
  t.is(startReceiveSpan(m, { localPeer: 'b', sourcePeer: 'a' }), undefined);
  const reply = msg({ id: 'r1', topic: '', headers: m.headers });
  const rpc = tracer.startSpan('Respond rpc');
  t.is(
    context.with(trace.setSpan(context.active(), rpc), () => startRespondSpan(reply, 'b')),
    undefined
  );
  rpc.end();
  t.is(reply.headers.traceparent, `00-${traceId}-00f067aa0ba902b7-00`);
  t.deepEqual(
    exporter.getFinishedSpans().map(s => s.name),
    ['Respond rpc'],
    'no message span for the unsampled trace'
  );
});

test.serial('Request: no receive span; the process span is the producer span’s child', t => {
  const root = tracer.startSpan('client');
  const m = msg();
  const producer = context.with(trace.setSpan(context.active(), root), () =>
    startProducerSpan(m, { localPeer: 'a', request: true })
  );
  t.is(startReceiveSpan(m, { localPeer: 'b', sourcePeer: 'a', request: true }), undefined);
  t.is(spanIdOf(m.headers.traceparent), producer!.spanContext().spanId, 'headers unchanged');
  const delivered = traceDelivery(m, {
    subscriptionId: 's7',
    queueGroup: '',
    sourcePeer: 'a',
    request: true,
  });
  endSpan(producer);
  root.end();
  const proc = finished('process orders.created');
  t.is(proc.parentSpanContext?.spanId, producer!.spanContext().spanId);
  t.like(proc.attributes, { 'meshwire.source_peer.id': 'a', 'meshwire.request': true });
  t.is(spanIdOf(delivered.headers.traceparent), proc.spanContext().spanId);
  t.false(exporter.getFinishedSpans().some(s => s.name.startsWith('receive')));
});

test.serial(
  'a unary call’s server span is its one message’s producer span; a second message gets its own',
  async t => {
    const server = tracer.startSpan('messaging.v1.Messenger/Request', {
      kind: SpanKind.SERVER,
      attributes: { 'network.peer.address': '127.0.0.1:5000' },
    });
    offerServerSpan(server);
    const ctx = trace.setSpan(context.active(), server);
    const first = msg({ headers: { app: 'x' } });
    const second = msg({ id: 'm2' });
    let activeInside: string | undefined;
    let secondResult: number | undefined;
    const expired = Object.assign(new Error('no reply in time'), { code: 'DEADLINE_EXCEEDED' });
    const out = context.with(ctx, () =>
      traceSend(first, { localPeer: 'node-a', target: { peerId: 'node-b' }, request: true }, () => {
        activeInside = trace.getActiveSpan()?.spanContext().spanId;
        setSpanAttributes(first, { 'network.peer.address': '127.0.0.1:7000' });
        addSpanEvent(first, 'handed_to_transport');
        secondResult = traceSend(second, { localPeer: 'node-a' }, () => 1);
        return Promise.reject(expired);
      })
    );
    await t.throwsAsync(out, { message: 'no reply in time' });
    t.is(secondResult, 1);
    t.is(activeInside, server.spanContext().spanId, 'the server span stays the active span');
    t.is(spanIdOf(first.headers.traceparent), server.spanContext().spanId);
    t.is(first.headers.app, 'x');
    // The second message: a send span of its own, child of the server span.
    const send = finished('send orders.created');
    t.is(send.parentSpanContext?.spanId, server.spanContext().spanId);
    t.is(spanIdOf(second.headers.traceparent), send.spanContext().spanId);
    t.is(exporter.getFinishedSpans().length, 1, 'traceSend did not end the server span');
    // after the message's part is over, its events go nowhere
    addSpanEvent(first, 'late');
    server.end();
    const s = finished('messaging.v1.Messenger/Request');
    t.like(s.attributes, {
      'messaging.system': 'meshwire',
      'messaging.operation.type': 'send',
      'messaging.destination.name': 'orders.created',
      'meshwire.source_peer.id': 'node-a',
      'meshwire.peer.id': 'node-b',
      'meshwire.request': true,
      'network.peer.address': '127.0.0.1:5000',
      'meshwire.peer.address': '127.0.0.1:7000',
      'error.type': 'DEADLINE_EXCEEDED',
    });
    // the status is the interceptor's to set, from the call's status code
    t.is(s.status.code, SpanStatusCode.UNSET);
    t.deepEqual(
      s.events.map(e => e.name),
      ['handed_to_transport', 'expired', 'exception']
    );
  }
);
