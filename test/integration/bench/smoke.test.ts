/**
 * Keeps `make bench-local` from rotting: runs its smoke mode (every scenario once, ~1 s
 * each, nothing written) and checks that every figure of every system came out. No
 * speed is asserted here: speed belongs in the benchmark itself.
 */
import test from 'ava';
import { assertPositive, runSmoke } from '../../helpers/bench-smoke';

const EXPECTED = [
  'grpc_floor.unary_p50_us',
  'grpc_floor.unary_p99_us',
  'grpc_floor.server_cpu_us_per_call',
  'grpc_floor.unary_rps_64',
  'grpc_floor.stream_mps_128',
  'nats.request_p50_us',
  'nats.request_p99_us',
  'nats.request_rps_64',
  'nats.pubsub_mps_128',
  'nats.pubsub_mps_16k',
  'meshwire.request_p50_us',
  'meshwire.request_p99_us',
  'meshwire.request_stream_responder_p50_us',
  'meshwire.request_stream_responder_p99_us',
  'meshwire.node_cpu_us_per_request',
  'meshwire.node_cpu_us_per_request_unary_respond',
  'meshwire.request_rps_64',
  'meshwire.pubsub_mps_128',
  'meshwire.pubsub_mps_16k',
];

const TARGET_RATIOS = [
  'request_p50_vs_floor_unary_p50',
  'request_stream_responder_p50_vs_floor_unary_p50',
  'node_cpu_per_request_vs_floor_server_cpu_per_call',
  'request_p99_vs_floor_unary_p99',
  'pubsub_mps_128_vs_nats',
  'pubsub_mps_16k_vs_nats',
  'request_rps_64_vs_nats',
];

test('bench-local --smoke measures every scenario of meshwire, NATS and the gRPC floor', async t => {
  const result = await runSmoke(t, 'local', 100_000);
  assertPositive(t, result.figures, EXPECTED, 'figure');
  assertPositive(t, result.ratios, TARGET_RATIOS, 'ratio');
  // p99 is never below p50: a sign the histogram summary is read the right way round.
  t.true(result.figures['meshwire.request_p99_us']! >= result.figures['meshwire.request_p50_us']!);
  t.true(result.figures['nats.request_p99_us']! >= result.figures['nats.request_p50_us']!);
  t.true(
    result.figures['meshwire.request_stream_responder_p99_us']! >=
      result.figures['meshwire.request_stream_responder_p50_us']!
  );
});
