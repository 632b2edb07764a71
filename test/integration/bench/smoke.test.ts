/**
 * Keeps `make bench-local` from rotting: runs its smoke mode (every scenario once, ~1 s
 * each, nothing written) and checks that every figure of every system came out. No
 * speed is asserted here: speed belongs in the benchmark itself.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';

const root = resolve(__dirname, '..', '..', '..', '..');

const EXPECTED = [
  'grpc_floor.unary_p50_us',
  'grpc_floor.unary_p99_us',
  'grpc_floor.unary_rps_64',
  'grpc_floor.stream_mps_128',
  'nats.request_p50_us',
  'nats.request_p99_us',
  'nats.request_rps_64',
  'nats.pubsub_mps_128',
  'nats.pubsub_mps_16k',
  'meshwire.request_p50_us',
  'meshwire.request_p99_us',
  'meshwire.request_rps_64',
  'meshwire.pubsub_mps_128',
  'meshwire.pubsub_mps_16k',
];

const TARGET_RATIOS = [
  'request_p50_vs_floor_unary_p50',
  'pubsub_mps_128_vs_nats',
  'pubsub_mps_16k_vs_nats',
  'request_rps_64_vs_nats',
];

interface SmokeResult {
  figures: Record<string, number>;
  ratios: Record<string, number>;
}

function runSmoke(): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise(done => {
    execFile(
      process.execPath,
      ['dist/bench/local/run.js', '--smoke'],
      { cwd: root, timeout: 100_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        done({ code, stdout, stderr });
      }
    );
  });
}

test('bench-local --smoke measures every scenario of meshwire, NATS and the gRPC floor', async t => {
  const { code, stdout, stderr } = await runSmoke();
  t.is(code, 0, stderr.slice(-3000));
  const line = stdout.split('\n').find(l => l.startsWith('SMOKE_RESULT '));
  t.truthy(line, `no SMOKE_RESULT line in:\n${stdout.slice(-2000)}\n${stderr.slice(-2000)}`);
  const result = JSON.parse(line!.slice('SMOKE_RESULT '.length)) as SmokeResult;
  for (const name of EXPECTED) {
    const v = result.figures[name];
    t.true(typeof v === 'number' && Number.isFinite(v) && v > 0, `${name} = ${v}`);
  }
  for (const name of TARGET_RATIOS) {
    const v = result.ratios[name];
    t.true(typeof v === 'number' && Number.isFinite(v) && v > 0, `ratio ${name} = ${v}`);
  }
  // p99 is never below p50: a sign the histogram summary is read the right way round.
  t.true(result.figures['meshwire.request_p99_us']! >= result.figures['meshwire.request_p50_us']!);
  t.true(result.figures['nats.request_p99_us']! >= result.figures['nats.request_p50_us']!);
});
