/**
 * Keeps `make bench-cluster` from rotting: runs its smoke mode (one meshwire node, NATS and
 * two meshwire nodes, every scenario once and short, no network namespace, nothing written)
 * and checks that every figure came out. No speed is asserted: speed belongs in the
 * benchmark itself.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';

const root = resolve(__dirname, '..', '..', '..', '..');

const EXPECTED = [
  'meshwire.request_p50_us',
  'meshwire.request_p99_us',
  'meshwire.request_rps_64',
  'meshwire.pubsub_mps_128',
  'nats.request_p50_us',
  'nats.request_p99_us',
  'nats.request_rps_64',
  'nats.pubsub_mps_128',
  'cluster.request_p50_us',
  'cluster.request_p99_us',
  'cluster.request_rps_64',
  'cluster.pubsub_mps_128',
];

const RATIOS = [
  'cluster_pubsub_mps_128_vs_single',
  'cluster_request_p50_vs_single',
  'cluster_request_rps_64_vs_single',
  'cluster_pubsub_mps_128_vs_nats',
];

interface SmokeResult {
  figures: Record<string, number>;
  ratios: Record<string, number>;
}

function runSmoke(): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise(done => {
    execFile(
      process.execPath,
      ['dist/bench/cluster/run.js', '--smoke'],
      { cwd: root, timeout: 110_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        done({ code, stdout, stderr });
      }
    );
  });
}

test('bench-cluster --smoke measures two nodes, one node and NATS', async t => {
  const { code, stdout, stderr } = await runSmoke();
  t.is(code, 0, stderr.slice(-3000));
  const line = stdout.split('\n').find(l => l.startsWith('SMOKE_RESULT '));
  t.truthy(line, `no SMOKE_RESULT line in:\n${stdout.slice(-2000)}\n${stderr.slice(-2000)}`);
  const result = JSON.parse(line!.slice('SMOKE_RESULT '.length)) as SmokeResult;
  for (const name of EXPECTED) {
    const v = result.figures[name];
    t.true(typeof v === 'number' && Number.isFinite(v) && v > 0, `${name} = ${v}`);
  }
  for (const name of RATIOS) {
    const v = result.ratios[name];
    t.true(typeof v === 'number' && Number.isFinite(v) && v > 0, `ratio ${name} = ${v}`);
  }
  // The difference target is present (its sign depends on the machine, not on the code).
  t.true(Number.isFinite(result.ratios['cluster_request_p50_minus_single_us']));
  // The cross-node pub/sub ran with flow control: the node dropped nothing.
  t.is(result.figures['cluster.pubsub_mps_128_dropped'], 0);
  t.true(result.figures['cluster.request_p99_us']! >= result.figures['cluster.request_p50_us']!);
  // No lossy figures in smoke mode (no namespace).
  t.false(Object.keys(result.figures).some(k => k.startsWith('loss1.')));
});
