import type { DataPoint, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import test from 'ava';
import { TransportMetrics } from '../../../src/telemetry';

/** A reader that collects on demand (no exporter, no timers). */
class PullReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

async function points(reader: PullReader): Promise<Map<string, Array<DataPoint<unknown>>>> {
  const { resourceMetrics }: { resourceMetrics: ResourceMetrics } = await reader.collect();
  const out = new Map<string, Array<DataPoint<unknown>>>();
  for (const sm of resourceMetrics.scopeMetrics)
    for (const m of sm.metrics)
      out.set(m.descriptor.name, m.dataPoints as Array<DataPoint<unknown>>);
  return out;
}

test('cluster secret figures of a socket: secrets accepted, handshakes by secret index, reloads by result', async t => {
  const reader = new PullReader();
  const provider = new MeterProvider({ readers: [reader] });
  const tm = new TransportMetrics();
  tm.attach(provider.getMeter('t'));
  tm.registerSocket({
    stats: () => ({
      clusterSecrets: 2,
      handshakesAcceptedBySecret: [5, 3],
      clusterSecretReloads: { ok: 2, unreadable: 0, invalid: 1 },
    }),
  });
  const all = await points(reader);
  const pick = (name: string) =>
    (all.get(name) ?? []).map(p => ({ attributes: p.attributes, value: p.value }));
  t.deepEqual(pick('meshwire.cluster.secrets'), [{ attributes: {}, value: 2 }]);
  t.deepEqual(pick('meshwire.cluster.handshakes.accepted'), [
    { attributes: { secret_index: '0' }, value: 5 },
    { attributes: { secret_index: '1' }, value: 3 },
  ]);
  t.deepEqual(pick('meshwire.cluster.secret.reloads'), [
    { attributes: { result: 'ok' }, value: 2 },
    { attributes: { result: 'failed', reason: 'unreadable' }, value: 0 },
    { attributes: { result: 'failed', reason: 'invalid' }, value: 1 },
  ]);
});
