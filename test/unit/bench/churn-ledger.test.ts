import test from 'ava';
import { lossRuleset } from '../../../bench/cluster/netns';
import {
  ChurnLedger,
  STATUS_DEADLINE_EXCEEDED,
  STATUS_OK,
  STATUS_UNAVAILABLE,
  percentile,
} from '../../../bench/chaos/ledger';

const send = (l: ChurnLedger, seq: number, target: string, startMs = 0) =>
  l.begin({
    kind: 'send',
    seq,
    entry: 'a',
    pinned: false,
    target,
    startMs,
    deadlineMs: startMs + 1000,
  });
const request = (l: ChurnLedger, seq: number, startMs = 0, pinned = false) =>
  l.begin({ kind: 'request', seq, entry: 'a', pinned, startMs, deadlineMs: startMs + 1000 });

test('an acknowledged send (delivered >= 1) that its subscriber never read is lost; delivered 0 and failures promise nothing', t => {
  const l = new ChurnLedger();
  l.end(send(l, 1, 'b'), 10, STATUS_OK, { delivered: 1 });
  l.end(send(l, 2, 'b'), 10, STATUS_OK, { delivered: 1 });
  l.end(send(l, 3, 'c'), 10, STATUS_OK, { delivered: 0 });
  l.end(send(l, 4, 'c'), 10, STATUS_UNAVAILABLE);
  l.receive('b', 1);
  const s = l.summary(100, 500);
  t.is(s.sends_acked, 2);
  t.is(s.acked_lost, 1);
  t.is(s.acked_zero, 1);
  t.is(s.send_errors, 1);
  t.true(s.examples.some(e => e.includes('#2')));
  // read on the wrong node does not count
  l.receive('c', 2);
  t.is(l.summary(100, 500).acked_lost, 1);
  l.receive('b', 2);
  t.is(l.summary(100, 500).acked_lost, 0);
});

test('drops the subscriber was told about are not losses; a message read twice is a duplicate', t => {
  const l = new ChurnLedger();
  l.end(send(l, 1, 'b'), 10, STATUS_OK, { delivered: 1 });
  l.end(send(l, 2, 'b'), 10, STATUS_OK, { delivered: 1 });
  l.receive('b', 1);
  l.receive('b', 1);
  l.droppedReported('b', 1);
  const s = l.summary(100, 500);
  t.is(s.acked_lost, 0);
  t.is(s.acked_dropped_reported, 1);
  t.is(s.duplicates, 1);
});

test('statuses: UNAVAILABLE and DEADLINE_EXCEEDED are counted apart from any other; hung calls outlive their deadline plus the slack', t => {
  const l = new ChurnLedger();
  l.end(request(l, 1, 0, true), 5, STATUS_UNAVAILABLE);
  l.end(request(l, 2), 1000, STATUS_DEADLINE_EXCEEDED);
  l.end(request(l, 3, 0, true), 20, 9); // FAILED_PRECONDITION
  l.end(request(l, 4), 1400, STATUS_DEADLINE_EXCEEDED); // 400 ms late: within 500
  l.end(request(l, 5), 1600, STATUS_OK, { replyMatches: true }); // 600 ms late: hung
  request(l, 6); // never ends
  l.end(request(l, 7), 100, STATUS_DEADLINE_EXCEEDED); // 900 ms early: a wrong status
  const s = l.summary(3000, 500);
  t.is(s.unavailable, 1);
  t.is(s.deadline_exceeded, 2);
  t.is(s.other_status, 2);
  t.is(s.hung_calls, 2);
  t.is(s.max_overrun_ms, 2000);
  t.is(s.requests, 7);
  t.is(s.request_errors, 5);
  t.is(s.request_error_ratio, 5 / 7);
  t.is(s.request_error_ratio_pinned, 1);
  t.is(s.request_error_ratio_service, 3 / 5);
  t.is(l.inFlight(), 1);
});

test('per restart: calls from SIGTERM until re-converged; reconvergence percentiles', t => {
  const l = new ChurnLedger();
  l.end(request(l, 1, 50), 60, STATUS_OK);
  l.end(request(l, 2, 150), 160, STATUS_UNAVAILABLE);
  l.end(request(l, 3, 250), 260, STATUS_OK);
  l.end(request(l, 4, 450), 460, STATUS_OK);
  l.restarts.push({
    node: 'b',
    termMs: 100,
    exitMs: 120,
    exitCode: 0,
    servingMs: 300,
    convergedMs: 400,
  });
  l.restarts.push({
    node: 'c',
    termMs: 500,
    exitMs: 510,
    exitCode: 0,
    servingMs: 600,
    convergedMs: 900,
  });
  const s = l.summary(1000, 500);
  t.deepEqual(s.restarts[0], {
    node: 'b',
    exit_code: 0,
    drain_ms: 20,
    start_ms: 180,
    reconverge_ms: 100,
    requests: 2,
    request_errors: 1,
    request_error_ratio: 0.5,
    sends: 0,
    send_errors: 0,
  });
  t.is(s.reconverge_p50_ms, 100);
  t.is(s.reconverge_p99_ms, 300);
  t.is(percentile([], 99), 0);
  t.is(percentile([5, 1, 3, 2, 4], 50), 3);
});

test('loss rules without a NATS port touch only UDP between the peer ports', t => {
  const rules = lossRuleset({ udpPeerPorts: [7401, 7411] }, 10);
  t.regex(
    rules,
    /udp sport \{ 7401, 7411 \} udp dport \{ 7401, 7411 \} numgen random mod 1000 < 10/
  );
  t.notRegex(rules, /tcp/);
});
