/**
 * With no OTEL_* variable the node starts, serves, leaves message headers alone (the
 * message spans stay on their no-op path) and never contacts an OTLP endpoint.
 */
import type { Server, Socket } from 'node:net';
import { createServer } from 'node:net';
import type { ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import test from 'ava';
import { createClients } from '../../../src/api';
import type { WireDelivery } from '../../../src/api/proto';
import { subscribed, waitFor } from '../../helpers/node';
import { scrape, startNodeProcess } from './node-process';

/** Listens where an OTLP exporter would connect by default (localhost:4317). */
function fakeCollector(): Promise<{ server: Server; connections: () => number } | undefined> {
  return new Promise(resolve => {
    let n = 0;
    const sockets: Socket[] = [];
    const server = createServer(s => {
      n++;
      sockets.push(s);
      s.destroy();
    });
    server.once('error', () => resolve(undefined));
    server.listen(4317, '127.0.0.1', () => resolve({ server, connections: () => n }));
  });
}

test('no OTEL_*: node serves, headers untouched, nothing exported', async t => {
  const collector = await fakeCollector();
  if (!collector) t.log('port 4317 is taken here: checking everything but the connection count');
  const node = await startNodeProcess(['--node-id', 'plain'], {});
  const clients = createClients(node.grpc);
  try {
    const m = clients.messenger as unknown as Record<string, (...a: unknown[]) => unknown>;
    const stream = m.Subscribe.call(clients.messenger, {
      topics: ['plain.>'],
    }) as ClientReadableStream<{ deliveries: WireDelivery[] }>;
    const seen: WireDelivery[] = [];
    stream.on('data', b => seen.push(...b.deliveries));
    stream.on('error', () => undefined);
    // The response headers say the subscription is live: one Send, no probing.
    await subscribed(stream);
    // A client sends traceparent metadata and a traceparent header of its own.
    const md = new Metadata();
    md.set('traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
    const headers = {
      traceparent: '00-11111111111111111111111111111111-2222222222222222-01',
      app: 'x',
    };
    const sent = await new Promise<{ delivered: number }>((resolve, reject) =>
      (m.Send as (...a: unknown[]) => void).call(
        clients.messenger,
        { message: { topic: 'plain.one', payload: Buffer.from('p'), headers }, ack: 'DELIVERED' },
        md,
        (err: ServiceError | null, res: { delivered: number }) => (err ? reject(err) : resolve(res))
      )
    );
    t.is(sent.delivered, 1);
    await waitFor(() => seen.length === 1, 5000, 'the delivery');
    stream.cancel();
    // The node added nothing: the client's own headers arrive exactly as sent.
    t.deepEqual({ ...seen[0].message.headers }, headers);
    const text = await scrape(node.metricsPort);
    t.regex(text, /^meshwire_messages_sent_total\{[^}]*kind="message"[^}]*\} [1-9]/m);
    const logs = node.lines.map(l => JSON.parse(l) as Record<string, unknown>);
    t.false(logs.some(l => l.msg === 'exporting traces over OTLP'));
    t.true(logs.some(l => String(l.msg).startsWith('traces off')));
    if (collector) t.is(collector.connections(), 0);
  } finally {
    clients.close();
    t.is(await node.stop(), 0);
    collector?.server.close();
  }
});
