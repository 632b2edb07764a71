/**
 * /metrics of real `meshwire serve` processes (two peered nodes on loopback), read as an
 * operator's Prometheus would: names follow the Prometheus conventions, process and
 * runtime metrics are there, counters exist at zero before any traffic, calls are
 * counted by method and gRPC status, and every metric the shipped Grafana dashboard
 * (helm/meshwire/dashboards/meshwire.json) queries is exported.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client, ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import { Metadata, status } from '@grpc/grpc-js';
import test from 'ava';
import type { MeshwireClients } from '../../../src/api';
import { createClients } from '../../../src/api';
import { AUTH_REJECT_REASONS } from '../../../src/api/auth-guard';
import { LIMIT_NAMES } from '../../../src/api/limits';
import { DATAGRAM_DROP_REASONS, MESSAGE_DROP_REASONS } from '../../../src/api/node-metrics';
import type { WireDelivery } from '../../../src/api/proto';
import { waitForPeersConnected } from '../../helpers/cluster';
import { subscribed } from '../../helpers/node';
import type { MetricFamily } from '../../helpers/promql';
import {
  dashboardExpressions,
  metricNamesOf,
  parseExposition,
  sampleValue,
} from '../../helpers/promql';
import type { NodeProcess } from './node-process';
import { freeUdpPorts, scrape, startPeeredPair } from './node-process';

const DASHBOARD = join(__dirname, '..', '..', '..', '..', 'helm/meshwire/dashboards/meshwire.json');

function call<Res>(client: Client, name: string, req: unknown): Promise<Res> {
  const fn = (client as unknown as Record<string, (...a: unknown[]) => unknown>)[name].bind(client);
  return new Promise((resolve, reject) =>
    fn(
      req,
      new Metadata(),
      { deadline: Date.now() + 10_000 },
      (err: ServiceError | null, res: Res) => (err ? reject(err) : resolve(res))
    )
  );
}

let a: NodeProcess;
let b: NodeProcess;
let ca: MeshwireClients;
let cb: MeshwireClients;
let before: string;

test.before(async () => {
  const [udpA, udpB] = await freeUdpPorts(2);
  [a, b] = await startPeeredPair([udpA, udpB]);
  // Scraped before any client call reaches node A.
  before = await scrape(a.metricsPort);
  ca = createClients(a.grpc);
  cb = createClients(b.grpc);
});

test.after.always(async () => {
  ca?.close();
  cb?.close();
  await Promise.all([a?.stop(), b?.stop()]);
});

const families = (text: string): Map<string, MetricFamily> => parseExposition(text);

test.serial(
  'before any traffic: every counter is exported, at zero for messages, drops and calls',
  t => {
    const f = families(before);
    for (const [name, fam] of f) {
      if (fam.type === 'counter') t.true(fam.samples.length > 0, `${name} has a series`);
    }
    for (const reason of MESSAGE_DROP_REASONS) {
      t.is(sampleValue(f, 'meshwire_messages_dropped_total', { reason }), 0, `drop ${reason}`);
    }
    for (const reason of DATAGRAM_DROP_REASONS) {
      t.not(
        sampleValue(f, 'meshwire_transport_datagrams_dropped_total', { reason }),
        undefined,
        `datagram drop ${reason}`
      );
    }
    for (const kind of ['message', 'request', 'reply']) {
      t.is(sampleValue(f, 'meshwire_messages_sent_total', { kind }), 0, `sent ${kind}`);
    }
    for (const source of ['local', 'peer']) {
      t.is(sampleValue(f, 'meshwire_messages_received_total', { source }), 0, `received ${source}`);
    }
    t.is(sampleValue(f, 'meshwire_messages_delivered_total'), 0);
    for (const limit of LIMIT_NAMES) {
      t.is(sampleValue(f, 'meshwire_limits_rejected_total', { limit }), 0, `limit ${limit}`);
    }
    t.is(sampleValue(f, 'meshwire_limits_dropped_total', { reason: 'memory_budget' }), 0);
    for (const reason of AUTH_REJECT_REASONS) {
      t.is(sampleValue(f, 'meshwire_auth_rejected_total', { reason }), 0, `auth ${reason}`);
    }
    for (const method of ['Send', 'SendStream', 'Subscribe', 'Request', 'Respond']) {
      t.is(
        sampleValue(f, 'meshwire_rpc_server_calls_total', {
          rpc_service: 'messaging.v1.Messenger',
          rpc_method: method,
          grpc_code: 'OK',
        }),
        0,
        `calls ${method}`
      );
    }
    for (const kind of ['minor', 'major']) {
      t.not(sampleValue(f, 'nodejs_gc_pause_seconds_total', { kind }), undefined, `gc ${kind}`);
    }
    t.is(sampleValue(f, 'meshwire_trace_export_errors_total'), 0);
  }
);

test.serial(
  'names follow Prometheus conventions; process metrics and the node id are there',
  async t => {
    const text = await scrape(a.metricsPort);
    const f = families(text);
    t.true(f.size > 30, `${f.size} families`);
    const problems: string[] = [];
    for (const [name, fam] of f) {
      if (!/^[a-z][a-z0-9]*(_[a-z0-9]+)*$/.test(name)) problems.push(`${name}: not snake_case`);
      const base = name.replace(/_total$/, '');
      if (fam.type === 'counter' && !name.endsWith('_total'))
        problems.push(`${name}: counter without _total`);
      if (fam.type !== 'counter' && name.endsWith('_total'))
        problems.push(`${name}: _total on a ${fam.type}`);
      if (fam.unit === 's' && !base.endsWith('_seconds'))
        problems.push(`${name}: seconds without _seconds`);
      if (fam.unit === 'By' && !base.endsWith('_bytes'))
        problems.push(`${name}: bytes without _bytes`);
      if (base.endsWith('_seconds') && fam.unit !== 's')
        problems.push(`${name}: _seconds in ${fam.unit}`);
      if (base.endsWith('_bytes') && fam.unit !== 'By')
        problems.push(`${name}: _bytes in ${fam.unit}`);
      if (fam.unit === 'ms') problems.push(`${name}: milliseconds (use seconds)`);
    }
    t.deepEqual(problems, []);

    const rss = sampleValue(f, 'process_resident_memory_bytes') ?? 0;
    const used = sampleValue(f, 'nodejs_heap_size_used_bytes') ?? 0;
    const total = sampleValue(f, 'nodejs_heap_size_total_bytes') ?? 0;
    t.true(rss > 10 * 1024 * 1024, `rss ${rss}`);
    t.true(used > 0 && used <= total && total < rss, `heap ${used}/${total}`);
    for (const name of [
      'nodejs_external_memory_bytes',
      'process_cpu_seconds_total',
      'process_start_time_seconds',
      'nodejs_eventloop_lag_seconds',
      'nodejs_eventloop_lag_max_seconds',
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_eventloop_utilization_ratio',
      'nodejs_active_handles',
    ]) {
      const v = sampleValue(f, name);
      t.true(v !== undefined && Number.isFinite(v) && v >= 0, `${name} = ${v}`);
    }
    t.true((sampleValue(f, 'nodejs_eventloop_utilization_ratio') ?? 2) <= 1);
    // Each node is told apart: target_info carries service.instance.id = node id.
    t.is(sampleValue(f, 'target_info', { service_instance_id: 'node-a' }), 1);
    t.is(
      sampleValue(families(await scrape(b.metricsPort)), 'target_info', {
        service_instance_id: 'node-b',
      }),
      1
    );
  }
);

test.serial(
  'calls by method and gRPC status: a Send that succeeds and one refused INVALID_ARGUMENT',
  async t => {
    await call(ca.messenger, 'Send', {
      message: { topic: 'metrics.ok', payload: Buffer.from('x'), headers: {} },
    });
    const err = await t.throwsAsync<ServiceError>(
      call(ca.messenger, 'Send', {
        message: { topic: 'not a valid topic..', payload: Buffer.from('x'), headers: {} },
      })
    );
    t.is(err?.code, status.INVALID_ARGUMENT);
    const f = families(await scrape(a.metricsPort));
    const send = (code: string): Record<string, string> => ({
      rpc_service: 'messaging.v1.Messenger',
      rpc_method: 'Send',
      grpc_code: code,
    });
    t.is(sampleValue(f, 'meshwire_rpc_server_calls_total', send('OK')), 1);
    t.is(sampleValue(f, 'meshwire_rpc_server_calls_total', send('INVALID_ARGUMENT')), 1);
    t.is(sampleValue(f, 'meshwire_rpc_server_duration_seconds_count', send('OK')), 1);
    t.is(sampleValue(f, 'meshwire_rpc_server_duration_seconds_count', send('INVALID_ARGUMENT')), 1);
    t.is(
      sampleValue(f, 'meshwire_rpc_server_duration_seconds_bucket', { ...send('OK'), le: '+Inf' }),
      1
    );
    // The accepted Send had no subscriber anywhere: counted as a message and as a drop.
    t.is(sampleValue(f, 'meshwire_messages_sent_total', { kind: 'message' }), 1);
  }
);

/**
 * A responder on node B answering every request on `topic`; resolves once the response
 * headers say the subscription is live.
 */
async function responder(
  clients: MeshwireClients,
  topic: string
): Promise<ClientReadableStream<unknown>> {
  const m = clients.messenger as unknown as Record<string, (...a: unknown[]) => unknown>;
  const stream = m.Subscribe.call(clients.messenger, { topics: [topic] }) as ClientReadableStream<{
    deliveries: WireDelivery[];
  }>;
  stream.on('data', batch => {
    for (const d of batch.deliveries) {
      if (!d.replyTo) continue;
      void call(clients.messenger, 'Respond', {
        replyTo: d.replyTo,
        message: { payload: Buffer.from('pong'), headers: {} },
      }).catch(() => undefined);
    }
  });
  stream.on('error', () => undefined);
  await subscribed(stream);
  return stream;
}

test.serial(
  'every metric the Grafana dashboard queries is exported by a node that carried traffic',
  async t => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as unknown;
    const exprs = dashboardExpressions(dashboard);
    t.true(exprs.length >= 20, `${exprs.length} expressions`);
    const wanted = new Set(exprs.flatMap(metricNamesOf));
    t.true(wanted.has('meshwire_transport_srtt_seconds'), 'names are read from the expressions');

    // Traffic: requests from a client of A answered by a responder on B (across the peer
    // transport), so A has request latency, peer connections and transport figures.
    // Requests go out on A's link to B, replies come back on B's link to A.
    await waitForPeersConnected(ca.peers, ['node-b'], 20_000);
    await waitForPeersConnected(cb.peers, ['node-a'], 20_000);
    const sub = await responder(cb, 'metrics.echo');
    let answered = 0;
    for (let i = 0; i < 5; i++) {
      await call(ca.messenger, 'Request', {
        target: { peerId: 'node-b' },
        message: { topic: 'metrics.echo', payload: Buffer.from('ping'), headers: {} },
        timeoutMs: 2000,
      });
      answered++;
    }
    sub.cancel();
    t.is(answered, 5, 'requests answered across the peers');

    const exported = families(await scrape(a.metricsPort));
    const samples = new Set<string>();
    for (const fam of exported.values()) for (const s of fam.samples) samples.add(s.name);
    const missing = [...wanted].filter(name => !samples.has(name));
    t.deepEqual(missing, [], `dashboard metrics not exported: ${missing.join(', ')}`);
  }
);
