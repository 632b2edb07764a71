/**
 * The small, seeded version of `make chaos` (bench/chaos/run.ts): three `meshwire serve`
 * processes on loopback, steady Sends with ack DELIVERED and Requests by interest, and one
 * node restarted as a StatefulSet update does (SIGTERM, drain, start again, wait for
 * SERVING and routes both ways). Every acknowledged Send is read by its subscriber, every
 * failed call is UNAVAILABLE or DEADLINE_EXCEEDED, and no call outlives its deadline.
 */
import test from 'ava';
import { runChurn } from '../../../bench/chaos/churn';
import { freePorts } from '../../helpers/ports';

test('rolling restart of one of three nodes: nothing acknowledged lost, no call hangs, failures are UNAVAILABLE', async t => {
  t.timeout(90_000);
  const ports = await freePorts(9);
  const nodes = ['node-a', 'node-b', 'node-c'].map((id, i) => ({
    id,
    grpcPort: ports[3 * i]!,
    peerPort: ports[3 * i + 1]!,
    metricsPort: ports[3 * i + 2]!,
  }));
  const result = await runChurn({
    nodes,
    restartOrder: [1],
    tickMs: 10,
    maxInFlight: 32,
    maxCalls: 1200,
    callDeadlineMs: 3000,
    hangSlackMs: 1000,
    maxReplyDelayMs: 200,
    settleMs: 1500,
    drainTimeoutMs: 3000,
    waitMs: 30_000,
    seed: 20261205,
    log: msg => t.log(msg),
  });
  const s = result.summary;
  t.log(JSON.stringify({ ...s, examples: undefined, restarts: s.restarts }));
  if (s.examples.length > 0) t.log(s.examples.join('\n'));
  t.true(s.sends_acked >= 100, `only ${s.sends_acked} acknowledged sends`);
  t.true(s.requests >= 100, `only ${s.requests} requests`);
  t.is(result.nodeCrashes, 0, 'no node exited unasked');
  t.is(s.acked_lost, 0, 'every acknowledged Send was read by its subscriber');
  t.is(s.duplicates, 0, 'no message read twice');
  t.is(s.hung_calls, 0, 'no call outlived its deadline');
  t.is(s.other_status, 0, `failed calls by status: ${JSON.stringify(s.errors_by_code)}`);
  t.is(s.reply_mismatches, 0);
  t.is(s.restarts.length, 1);
  t.is(s.restarts[0]!.exit_code, 0, 'the node drained and exited 0 on SIGTERM');
  t.true(s.restarts[0]!.reconverge_ms >= 0);
});
