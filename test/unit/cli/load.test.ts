import test from 'ava';
import {
  LatencyHistogram,
  SubscriberStats,
  asciiHistogram,
  creditLimit,
} from '../../../src/cli/load';

test('percentiles are within 1/16 of the true value, min and max exact', t => {
  const h = new LatencyHistogram();
  for (let i = 1; i <= 10_000; i++) h.record(i / 100); // 0.01 .. 100 ms
  const s = h.summary();
  t.is(s.count, 10_000);
  t.is(s.minMs, 0.01);
  t.is(s.maxMs, 100);
  for (const [q, got] of [
    [0.5, s.p50Ms],
    [0.9, s.p90Ms],
    [0.99, s.p99Ms],
    [0.999, s.p999Ms],
  ]) {
    const exact = q * 100;
    t.true(Math.abs(got - exact) / exact <= 1 / 16, `q ${q}: ${got} vs ${exact}`);
  }
  t.true(Math.abs(s.meanMs - 50.005) < 1e-6);
});

test('merge adds counts; empty histograms summarise to zeros; ascii rows cover min..max', t => {
  const a = new LatencyHistogram();
  const b = new LatencyHistogram();
  t.deepEqual(a.summary(), {
    count: 0,
    minMs: 0,
    meanMs: 0,
    p50Ms: 0,
    p90Ms: 0,
    p99Ms: 0,
    p999Ms: 0,
    maxMs: 0,
  });
  t.deepEqual(asciiHistogram(a), []);
  a.record(1);
  b.record(8);
  a.merge(b);
  t.is(a.count, 2);
  t.is(a.summary().maxMs, 8);
  const rows = asciiHistogram(a);
  t.is(rows.length, 4); // 1, 2, 4, 8 ms octaves (µs powers of two 512.. 8192)
  t.is(
    rows.reduce((n, r) => n + Number(r.trim().split(/\s+/)[1]), 0),
    2
  );
});

test('publisher credit: slowest subscriber, or the queue group total, plus the window', t => {
  const a = new SubscriberStats();
  const b = new SubscriberStats();
  a.received = 100;
  b.received = 40;
  b.dropped = 10;
  t.is(creditLimit([], false, 5), Infinity);
  t.is(creditLimit([a, b], false, 5), 55);
  t.is(creditLimit([a, b], true, 5), 155);
});
