/**
 * The latency budget's bookkeeping (src/common/latency-trace.ts): the off switch, records
 * and the per-stage aggregation. Pure logic on made-up stamps: nothing here is timed.
 */
import test from 'ava';
import {
  LATENCY_TRACE,
  RECORD_CAPACITY,
  STAGE_COUNT,
  STAGE_NAMES,
  Stage,
  aggregateBudget,
  latencyRecords,
  median,
  resetLatencyTrace,
  traceBegin,
  traceCommit,
  traceMark,
  tracePending,
} from '../../../src/common/latency-trace';

test('off unless MESHWIRE_LATENCY_TRACE=1', t => {
  t.is(LATENCY_TRACE, process.env.MESHWIRE_LATENCY_TRACE === '1');
});

test('every stage has a name, in id order', t => {
  t.is(STAGE_NAMES.length, STAGE_COUNT);
  t.is(Object.keys(Stage).length, STAGE_COUNT);
  t.deepEqual(
    Object.values(Stage).sort((a, b) => a - b),
    STAGE_NAMES.map((_, i) => i)
  );
  t.is(new Set(STAGE_NAMES).size, STAGE_COUNT);
});

test.serial('records: first stamp wins, pending adopted by an rpc decode only', t => {
  resetLatencyTrace();
  t.deepEqual(latencyRecords(), []);
  // before any record: pending (receive side), dropped by a gRPC begin
  tracePending(Stage.TRANSPORT_OPENED, 5);
  traceBegin(Stage.GRPC_DECODE_START);
  traceMark(Stage.TRANSPORT_SENT, 10);
  traceMark(Stage.TRANSPORT_SENT, 20); // a later ack packet: ignored
  tracePending(Stage.TRANSPORT_OPENED, 30);
  traceCommit(Stage.RPC_DECODED); // the reply: joins the open record
  let [rec] = latencyRecords();
  t.is(rec![Stage.TRANSPORT_SENT], 10);
  t.is(rec![Stage.TRANSPORT_OPENED], 30);
  t.true(rec![Stage.GRPC_DECODE_START]! > 0);
  t.true(rec![Stage.RPC_DECODED]! > 0);
  // a second rpc decode (the next request on a responder's node) begins a new record
  tracePending(Stage.MUX_IN, 40);
  traceCommit(Stage.RPC_DECODED);
  const recs = latencyRecords();
  t.is(recs.length, 2);
  rec = recs[1];
  t.is(rec![Stage.MUX_IN], 40);
  t.is(rec![Stage.TRANSPORT_SENT], 0);
  resetLatencyTrace();
});

test.serial('records: the ring keeps the newest RECORD_CAPACITY', t => {
  resetLatencyTrace();
  for (let i = 0; i < RECORD_CAPACITY + 3; i++) {
    traceBegin(Stage.GRPC_DECODE_START);
    traceMark(Stage.REPLY_WRITTEN, i + 1);
  }
  const recs = latencyRecords();
  t.is(recs.length, RECORD_CAPACITY);
  t.is(recs[0]![Stage.REPLY_WRITTEN], 4);
  t.is(recs[RECORD_CAPACITY - 1]![Stage.REPLY_WRITTEN], RECORD_CAPACITY + 3);
  resetLatencyTrace();
});

test('median of sorted values', t => {
  t.is(median([]), 0);
  t.is(median([3]), 3);
  t.is(median([1, 2, 10]), 2);
  t.is(median([1, 2, 4, 10]), 3);
});

/** A record over stages 0..3 (names a..d) from the gaps in ns; 0 = stage not reached. */
function rec(...at: number[]): number[] {
  return at;
}

test('aggregateBudget: intervals between consecutive stamps in time order', t => {
  const names = ['a', 'b', 'c', 'd'];
  const b = aggregateBudget(
    [
      rec(1_000, 3_000, 7_000, 0), // a->b 2 us, b->c 4 us
      rec(1_000, 5_000, 9_000, 0), // a->b 4 us, b->c 4 us
      rec(1_000, 4_000, 13_000, 0), // a->b 3 us, b->c 9 us
    ],
    names
  );
  t.is(b.records, 3);
  t.deepEqual(
    b.rows.map(r => [r.from, r.to, r.count, r.p50Us, r.meanUs]),
    [
      ['a', 'b', 3, 3, 3],
      ['b', 'c', 3, 4, 17 / 3],
    ]
  );
  t.is(b.totalP50Us, 8);
  t.is(b.totalMeanUs, (6 + 8 + 12) / 3);
  // every record has both intervals: the shares add up to 1
  t.is(Math.round(b.rows.reduce((s, r) => s + r.share, 0) * 1e9) / 1e9, 1);
});

test('aggregateBudget: time order decides, not stage order; missing stages skipped', t => {
  const names = ['a', 'b', 'c', 'd'];
  // d happens before c here; b is missing
  const b = aggregateBudget([rec(1_000, 0, 9_000, 4_000)], names);
  t.deepEqual(
    b.rows.map(r => [r.from, r.to, r.p50Us]),
    [
      ['a', 'd', 3],
      ['d', 'c', 5],
    ]
  );
});

test('aggregateBudget: records lacking a required stage are left out', t => {
  const names = ['a', 'b', 'c', 'd'];
  const b = aggregateBudget(
    [rec(1_000, 2_000, 0, 0), rec(1_000, 2_000, 3_000, 0), rec(0, 0, 0, 0)],
    names,
    [2]
  );
  t.is(b.records, 1);
  t.is(b.totalMeanUs, 2);
  // a record with fewer than two stamps has no interval
  t.is(aggregateBudget([rec(5, 0, 0, 0)], names).records, 0);
});

test('aggregateBudget: a rare interval weighs by how often it occurs in the share', t => {
  const names = ['a', 'b', 'c', 'd'];
  const b = aggregateBudget([rec(1_000, 3_000, 0, 0), rec(1_000, 0, 3_000, 0)], names);
  const ab = b.rows.find(r => r.to === 'b')!;
  t.is(ab.count, 1);
  t.is(ab.share, 0.5);
});
