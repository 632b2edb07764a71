/**
 * The optional Grafana dashboard of the chart (values grafanaDashboard.*), rendered by
 * the real helm binary: off by default; when enabled, a ConfigMap with the sidecar's
 * label carrying helm/meshwire/dashboards/meshwire.json unchanged.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { CHART, findAll, render } from './chart-helpers';

const FULL = 'mw-meshwire';
const SHIPPED = JSON.parse(
  readFileSync(join(CHART, 'dashboards', 'meshwire.json'), 'utf8')
) as Record<string, unknown>;

test('grafanaDashboard is off by default: no dashboard ConfigMap', t => {
  const names = findAll(render(), 'ConfigMap').map(cm => String(cm.metadata.name));
  t.false(names.includes(`${FULL}-dashboard`), names.join(', '));
});

test('grafanaDashboard.enabled renders the dashboard ConfigMap with the sidecar label', t => {
  const objects = render({
    set: [
      'grafanaDashboard.enabled=true',
      'grafanaDashboard.namespace=monitoring',
      'grafanaDashboard.annotations.grafana_folder=meshwire',
    ],
  });
  const cm = findAll(objects, 'ConfigMap').find(o => o.metadata.name === `${FULL}-dashboard`);
  t.truthy(cm, 'dashboard ConfigMap rendered');
  t.is(cm?.metadata.labels.grafana_dashboard, '1');
  t.is(cm?.metadata.labels['app.kubernetes.io/instance'], 'mw');
  t.is(cm?.metadata.namespace, 'monitoring');
  t.is(cm?.metadata.annotations.grafana_folder, 'meshwire');
  const json = JSON.parse(String(cm?.data['meshwire.json'])) as Record<string, unknown>;
  t.deepEqual(json, SHIPPED);
  t.is(json.uid, 'meshwire');
  const titles = (json.panels as Array<{ title: string; type: string }>)
    .filter(p => p.type === 'row')
    .map(p => p.title);
  t.deepEqual(titles, [
    'Throughput',
    'Latency and calls',
    'Drops',
    'Peers and connections',
    'Transport health',
    'Process',
    'RequestMany (scatter-gather)',
  ]);
});

test('grafanaDashboard.labels replaces the sidecar label (another Grafana setup)', t => {
  const objects = render({
    set: [
      'grafanaDashboard.enabled=true',
      'grafanaDashboard.labels.grafana_dashboard=null',
      'grafanaDashboard.labels.dashboards=meshwire',
    ],
  });
  const cm = findAll(objects, 'ConfigMap').find(o => o.metadata.name === `${FULL}-dashboard`);
  t.is(cm?.metadata.labels.dashboards, 'meshwire');
  t.false('grafana_dashboard' in (cm?.metadata.labels ?? {}));
});
