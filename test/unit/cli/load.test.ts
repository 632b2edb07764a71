import { EventEmitter } from 'node:events';
import test from 'ava';
import { systemClock } from '../../../src/common';
import {
  CreditGate,
  LatencyHistogram,
  PublisherStats,
  RequesterStats,
  StopSignal,
  runPublisher,
  runRequester,
  SubscriberStats,
  asciiHistogram,
  creditLimit,
} from '../../../src/cli/load';
import type { MessengerApi } from '../../../src/cli/load';

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

/** A SendStream that acks every request on the next tick (or never, with `ack: false`). */
function fakeApi(ack = true): { api: MessengerApi; written: number[] } {
  const written: number[] = [];
  const api = {
    SendStream() {
      const stream = new EventEmitter() as EventEmitter & {
        write(req: { sequence: number; messages: unknown[] }): void;
        end(): void;
      };
      stream.write = req => {
        written.push(req.messages.length);
        if (ack)
          setImmediate(() =>
            stream.emit('data', { sequence: req.sequence, errorCode: 0, errorMessage: '' })
          );
      };
      stream.end = () => undefined;
      return stream;
    },
  } as unknown as MessengerApi; // only SendStream is called by runPublisher
  return { api, written };
}

const load = { subject: 's', size: 16, batch: 64, inFlight: 4 };

test('publishers sharing a gate send exactly --msgs in all', async t => {
  const { api, written } = fakeApi();
  const gate = { sent: 0, room: () => Promise.resolve(true) };
  const stats = [new PublisherStats(), new PublisherStats()];
  const stop = new StopSignal();
  await Promise.all(
    stats.map(s =>
      runPublisher(api, { ...load, maxMessages: 1000, maxMs: 5000 }, s, gate, stop, systemClock)
    )
  );
  t.is(gate.sent, 1000);
  t.is(stats[0].sent + stats[1].sent, 1000);
  t.is(
    written.reduce((a, b) => a + b, 0),
    1000
  );
});

test('a publisher without credit or acks ends at its time limit', async t => {
  for (const [ack, subs] of [
    [true, [new SubscriberStats()]], // a subscriber that never receives: no credit after the window
    [false, []], // no acks: in-flight full
  ] as const) {
    const { api } = fakeApi(ack);
    const stop = new StopSignal();
    const gate = new CreditGate([...subs], false, 128, stop, systemClock, systemClock.now() + 150);
    const started = Date.now();
    const run = runPublisher(
      api,
      { ...load, maxMessages: 1_000_000, maxMs: 150 },
      new PublisherStats(),
      gate,
      stop,
      systemClock
    );
    await run.catch(() => undefined); // unacked requests may be a drain timeout
    t.true(Date.now() - started < 5_000 + 1_000, `ack ${String(ack)}`);
    t.true(gate.sent <= (ack ? 128 : 4 * 64), `sent ${gate.sent}`);
  }
});

/** A RequestStream whose replies echo the payload (or `replySize` bytes), or never come. */
function fakeRequestApi(answer: 'echo' | 'none' | number) {
  let inFlight = 0;
  let maxInFlight = 0;
  const api = {
    RequestStream() {
      const stream = new EventEmitter() as EventEmitter & {
        write(req: { requestId: string; message: { payload: Buffer } }): void;
        end(): void;
      };
      stream.write = req => {
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        if (answer === 'none') return;
        const payload = answer === 'echo' ? req.message.payload : Buffer.alloc(answer);
        setImmediate(() => {
          inFlight--;
          stream.emit('data', { requestId: req.requestId, reply: { payload }, errorCode: 0 });
        });
      };
      stream.end = () => undefined;
      return stream;
    },
  } as unknown as MessengerApi; // only RequestStream is called by runRequester
  return { api, maxInFlight: () => maxInFlight };
}

const requests = { subject: 's', size: 16, concurrency: 8, timeoutMs: 200 };

test('a requester sends exactly the count, never more than the concurrency in flight', async t => {
  const { api, maxInFlight } = fakeRequestApi('echo');
  const stats = new RequesterStats();
  await runRequester(
    api,
    { ...requests, maxMessages: 1000, maxMs: 5000, expectEcho: true },
    stats,
    new StopSignal(),
    systemClock
  );
  t.is(stats.sent, 1000);
  t.is(stats.answered, 1000);
  t.is(stats.failed, 0);
  t.is(maxInFlight(), 8);
  t.is(stats.latency.count, 1000);
});

test('a requester counts replies of the wrong size as failed when it expects an echo', async t => {
  const { api } = fakeRequestApi(3);
  const stats = new RequesterStats();
  const run = { ...requests, maxMessages: 50, maxMs: 5000 };
  await runRequester(api, { ...run, expectEcho: true }, stats, new StopSignal(), systemClock);
  t.is(stats.failed, 50);
  t.regex(stats.firstError, /a reply of 3 bytes to a request of 16 bytes/);
  const lenient = new RequesterStats();
  await runRequester(api, run, lenient, new StopSignal(), systemClock);
  t.is(lenient.answered, 50);
});

test('a requester whose replies never come ends at its time limit plus the drain', async t => {
  const { api } = fakeRequestApi('none');
  const stats = new RequesterStats();
  const started = Date.now();
  await runRequester(
    api,
    { ...requests, maxMessages: 1_000_000, maxMs: 100 },
    stats,
    new StopSignal(),
    systemClock
  );
  t.is(stats.sent, 8);
  t.is(stats.answered, 0);
  t.true(Date.now() - started < 100 + 200 + 1_000 + 2_000, `${Date.now() - started} ms`);
});

test('a stopped requester (Ctrl-C) stops sending at once and returns', async t => {
  const { api } = fakeRequestApi('echo');
  const stats = new RequesterStats();
  const stop = new StopSignal();
  setTimeout(() => stop.stop(), 30);
  await runRequester(
    api,
    { ...requests, maxMessages: 1e12, maxMs: 60_000 },
    stats,
    stop,
    systemClock
  );
  t.true(stop.stopped);
  t.is(stats.answered, stats.sent);
  t.true(stats.sent > 0);
});
