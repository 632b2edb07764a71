import test from 'ava';
import { ManualClock, NotFoundError } from '../../../src/common';
import { DESTROY_AFTER_CLOSE_MS, Mux, createDuplexPair } from '../../../src/mux';
import type { Envelope, HandlerContext } from '../../../src/rpc';
import { EnvelopeKind, RequestTable, RpcConnection, StatusCode } from '../../../src/rpc';
import { createStuckDuplex, rng, turns } from '../mux/helpers';

const CH = [
  { id: 1, priority: 1, sendQueueCapacity: 4096 },
  { id: 2, priority: 1, sendQueueCapacity: 4096 },
];

function setup(
  opts: { maxInFlight?: number; serverClock?: ManualClock; maxConcurrentHandlers?: number } = {}
) {
  const clock = new ManualClock();
  const serverClock = opts.serverClock ?? clock;
  const [da, db] = createDuplexPair();
  const ma = new Mux(da, { channels: CH, clock, pingIntervalMs: 0 });
  const mb = new Mux(db, { channels: CH, clock: serverClock, pingIntervalMs: 0 });
  const client = new RpcConnection(ma, {
    channelId: 1,
    clock,
    maxInFlight: opts.maxInFlight ?? 64,
  });
  const server = new RpcConnection(mb, {
    channelId: 1,
    clock: serverClock,
    maxConcurrentHandlers: opts.maxConcurrentHandlers,
  });
  return { clock, serverClock, ma, mb, client, server };
}

test('success: the response comes back with its body and headers', async t => {
  const { client, server } = setup();
  server.setHandler(req => ({
    body: Buffer.concat([Buffer.from('re:'), req.body]),
    headers: { echo: req.headers.tp },
  }));
  const res = await client.request(
    { op: 3, body: Buffer.from('x'), headers: { tp: '00-abc' } },
    { timeoutMs: 1000 }
  );
  t.is(res.kind, EnvelopeKind.RESPONSE);
  t.is(res.body.toString(), 're:x');
  t.is(res.headers.echo, '00-abc');
  t.is(client.inFlight, 0);
});

async function callerOfNotFound(client: RpcConnection): Promise<Envelope> {
  return client.request({ body: Buffer.alloc(1) }, { timeoutMs: 1000 });
}

test("a handler's error comes back as its status, with the caller's stack", async t => {
  const { client, server } = setup();
  server.setHandler(() => {
    throw new NotFoundError('no such thing');
  });
  const err = await t.throwsAsync(callerOfNotFound(client));
  t.is(err?.name, 'NotFoundError');
  t.is((err as NotFoundError).code, 'NOT_FOUND');
  t.regex(err?.stack ?? '', /callerOfNotFound/);
  t.is(client.inFlight, 0);
});

async function callerThatTimesOut(client: RpcConnection): Promise<Envelope> {
  return client.request({}, { timeoutMs: 100 });
}

test('timeout counts from the write, not from the enqueue, and carries the caller stack', async t => {
  const clock = new ManualClock();
  const stuck = createStuckDuplex();
  const mux = new Mux(stuck.d, { channels: CH, clock, pingIntervalMs: 0 });
  const client = new RpcConnection(mux, { channelId: 1, clock });
  // The first write fills the stuck duplex; the request waits in the mux queue.
  await client.oneway({ body: Buffer.alloc(100) });
  await turns();
  const p = callerThatTimesOut(client);
  let settled = false;
  p.catch(() => {}).finally(() => (settled = true));
  clock.advance(500);
  await turns();
  t.false(settled, 'not written yet: the timeout has not started');
  stuck.release();
  await turns();
  clock.advance(99);
  await turns();
  t.false(settled);
  clock.advance(1);
  const err = await t.throwsAsync(p);
  t.is(err?.name, 'DeadlineExceededError');
  t.regex(err?.stack ?? '', /callerThatTimesOut/);
  t.is(client.inFlight, 0);
  t.is(clock.pendingTimers, 0);
});

test('an absolute deadline is a hard stop even while the request waits to be written', async t => {
  const clock = new ManualClock();
  const stuck = createStuckDuplex();
  const mux = new Mux(stuck.d, { channels: CH, clock, pingIntervalMs: 0 });
  const client = new RpcConnection(mux, { channelId: 1, clock });
  await client.oneway({ body: Buffer.alloc(100) });
  await turns();
  const p = client.request({}, { deadline: clock.now() + 200 });
  clock.advance(200);
  await t.throwsAsync(p, { name: 'DeadlineExceededError' });
  t.is(client.inFlight, 0);
  await t.throwsAsync(client.request({}, { deadline: clock.now() }), {
    name: 'DeadlineExceededError',
  });
});

test('abort fails the call with CancelledError and returns its permit at once', async t => {
  const { client, server } = setup();
  server.setHandler(() => new Promise(() => {}));
  const ac = new AbortController();
  const p = client.request({}, { timeoutMs: 10_000, signal: ac.signal });
  await turns();
  t.is(client.inFlight, 1);
  ac.abort();
  await t.throwsAsync(p, { name: 'CancelledError' });
  t.is(client.inFlight, 0);
  const pre = new AbortController();
  pre.abort();
  await t.throwsAsync(client.request({}, { signal: pre.signal }), { name: 'CancelledError' });
});

test('connection close fails every pending call at once, not at its timeout', async t => {
  const { client, server, ma, clock } = setup();
  server.setHandler(() => new Promise(() => {}));
  const calls = Array.from({ length: 50 }, () => client.request({}, { timeoutMs: 60_000 }));
  await turns();
  t.is(client.inFlight, 50);
  ma.close('test over');
  const results = await Promise.allSettled(calls);
  t.true(
    results.every(
      r => r.status === 'rejected' && (r.reason as Error).name === 'ConnectionClosedError'
    )
  );
  t.is(client.inFlight, 0);
  clock.advance(DESTROY_AFTER_CLOSE_MS); // the mux's own timer, which ends a stuck close
  t.is(clock.pendingTimers, 0, 'every call timer cancelled');
  await t.throwsAsync(client.request({}), { name: 'ConnectionClosedError' });
  t.true(server.closed, 'the far side saw the close too');
});

test('late responses are dropped and counted', async t => {
  // The server's clock stands still (think: skew and transit), so it answers after the
  // caller gave up.
  const { client, server, clock } = setup({ serverClock: new ManualClock() });
  let answer!: () => void;
  server.setHandler(() => new Promise<void>(r => (answer = r)));
  const p = client.request({}, { timeoutMs: 100 });
  await turns();
  clock.advance(100);
  await t.throwsAsync(p, { name: 'DeadlineExceededError' });
  answer();
  await turns();
  t.is(client.drops.get('late_response'), 1);
  t.is(client.inFlight, 0);
});

test('the remaining deadline travels: the handler sees it, its signal aborts, its late answer is not sent', async t => {
  const { client, server, clock } = setup();
  let ctx!: HandlerContext;
  let finish!: () => void;
  server.setHandler((_req, c) => {
    ctx = c;
    return new Promise<void>(r => (finish = r));
  });
  const p = client.request({}, { timeoutMs: 300 });
  p.catch(() => {});
  await turns();
  t.is(ctx.deadline, clock.now() + 300);
  const signal = ctx.signal;
  t.false(signal.aborted);
  clock.advance(301);
  t.true(signal.aborted, 'the handler learns that nobody waits any more');
  finish();
  await turns();
  t.is(server.drops.get('response_after_deadline'), 1);
  t.is(server.handling, 0);
  await t.throwsAsync(p, { name: 'DeadlineExceededError' });
});

test('a caller that gives up tells the handler: CANCEL aborts its signal with the reason, and no response is sent', async t => {
  // the server's clock stands still: only the caller's CANCEL can end the handlers
  const { client, server, clock } = setup({ serverClock: new ManualClock() });
  const ctxs: HandlerContext[] = [];
  const finishers: Array<() => void> = [];
  server.setHandler((_req, c) => {
    ctxs.push(c);
    return new Promise<void>(r => finishers.push(r));
  });
  const timedOut = client.request({}, { timeoutMs: 300 });
  timedOut.catch(() => {});
  const abort = new AbortController();
  const cancelled = client.request({}, { timeoutMs: 5000, signal: abort.signal });
  cancelled.catch(() => {});
  await turns();
  const [s1, s2] = ctxs.map(c => c.signal);
  clock.advance(301);
  await turns();
  t.true(s1.aborted, 'the caller timed out');
  t.is((s1.reason as Error).name, 'DeadlineExceededError');
  t.false(s2.aborted);
  abort.abort();
  await turns();
  t.true(s2.aborted, 'the caller cancelled');
  t.is((s2.reason as Error).name, 'CancelledError');
  finishers.forEach(f => f());
  await turns();
  t.is(server.handling, 0);
  t.is(client.drops.get('late_response'), 0, 'no response was sent for either');
  await t.throwsAsync(timedOut, { name: 'DeadlineExceededError' });
  await t.throwsAsync(cancelled, { name: 'CancelledError' });
});

test('in-flight requests are bounded: one over gets ResourceExhaustedError', async t => {
  const { client, server } = setup({ maxInFlight: 4 });
  const answers: (() => void)[] = [];
  server.setHandler(() => new Promise<void>(r => answers.push(r)));
  const calls = Array.from({ length: 4 }, () => client.request({}, { timeoutMs: 1000 }));
  await t.throwsAsync(client.request({}), { name: 'ResourceExhaustedError' });
  await turns();
  answers.forEach(a => a());
  await Promise.all(calls);
  t.is(client.inFlight, 0);
  const again = client.request({}, { timeoutMs: 1000 });
  await turns();
  answers[4]();
  t.is((await again).status, StatusCode.OK, 'permits came back: a new call goes through');
});

test('incoming handlers are bounded: one over is answered RESOURCE_EXHAUSTED', async t => {
  const { client, server } = setup({ maxConcurrentHandlers: 2 });
  server.setHandler(() => new Promise(() => {}));
  const a = client.request({}, { timeoutMs: 1000 });
  const b = client.request({}, { timeoutMs: 1000 });
  const c = client.request({}, { timeoutMs: 1000 });
  a.catch(() => {});
  b.catch(() => {});
  await t.throwsAsync(c, { name: 'ResourceExhaustedError' });
  t.is(server.drops.get('handler_limit'), 1);
});

test('oneway reaches the handler and gets no response', async t => {
  const { client, server, ma } = setup();
  const got: string[] = [];
  server.setHandler(req => {
    got.push(`${req.kind}:${req.op}:${req.body.toString()}`);
    return { body: Buffer.from('ignored') };
  });
  await client.oneway({ op: 9, body: Buffer.from('fire') });
  t.true(client.tryOneway({ op: 9, body: Buffer.from('forget') }));
  await turns();
  t.deepEqual(got, [`${EnvelopeKind.ONEWAY}:9:fire`, `${EnvelopeKind.ONEWAY}:9:forget`]);
  t.is(ma.stats.messagesIn, 0, 'nothing came back');
});

test('a malformed envelope closes the connection as a protocol violation', async t => {
  const { ma, mb, server } = setup();
  ma.trySend(1, Buffer.from([0x77, 0, 0]));
  await turns();
  t.true(mb.closed);
  t.is(server.drops.get('malformed_envelope'), 1);
  t.true(server.closed);
});

test('an rpc on another channel of the same mux is independent', async t => {
  const { ma, mb, client, server } = setup();
  const c2 = new RpcConnection(ma, { channelId: 2 });
  const s2 = new RpcConnection(mb, { channelId: 2 });
  server.setHandler(() => ({ body: Buffer.from('one') }));
  s2.setHandler(() => ({ body: Buffer.from('two') }));
  t.is((await client.request({})).body.toString(), 'one');
  t.is((await c2.request({})).body.toString(), 'two');
});

test('opaque ids wrap at 2^32, skip 0, and are never reused while pending', t => {
  const clock = new ManualClock();
  const table = new RequestTable<number>({ clock, maxInFlight: 10, firstId: 0xfffffffe });
  const a = table.add({ captureStack: false });
  const b = table.add({ captureStack: false });
  const c = table.add({ captureStack: false });
  t.deepEqual([a.id, b.id, c.id], [0xfffffffe, 0xffffffff, 1]);
  const table2 = new RequestTable<number>({ clock, maxInFlight: 10, firstId: 5 });
  const x = table2.add({ captureStack: false });
  const ids = new Set([x.id]);
  for (let i = 0; i < 5; i++) ids.add(table2.add({ captureStack: false }).id);
  t.is(ids.size, 6);
});

test('permit accounting after 10,000 mixed outcomes: nothing leaks', async t => {
  const seed = 20261123;
  const rand = rng(seed);
  const { client, server, clock, ma } = setup({ maxInFlight: 256 });
  server.setHandler((req, ctx) => {
    switch (req.op) {
      case 0:
        return { body: req.body };
      case 1:
        throw new NotFoundError('nope');
      case 2:
        return new Promise<void>((_, reject) =>
          ctx.signal.addEventListener('abort', () => reject(new Error('gave up')))
        );
      default:
        return new Promise<void>(r => setImmediate(r));
    }
  });
  const counts: Record<string, number> = {};
  const pending: Promise<void>[] = [];
  const track = (p: Promise<Envelope>) =>
    p.then(
      () => void (counts.ok = (counts.ok ?? 0) + 1),
      (e: Error) => void (counts[e.name] = (counts[e.name] ?? 0) + 1)
    );
  let issued = 0;
  for (let batch = 0; batch < 50; batch++) {
    for (let i = 0; i < 200; i++) {
      const r = rand();
      issued++;
      if (r < 0.4)
        pending.push(track(client.request({ op: 0, body: Buffer.alloc(8) }, { timeoutMs: 50 })));
      else if (r < 0.55) pending.push(track(client.request({ op: 1 }, { timeoutMs: 50 })));
      else if (r < 0.7) pending.push(track(client.request({ op: 2 }, { timeoutMs: 20 })));
      else if (r < 0.85) {
        const ac = new AbortController();
        pending.push(track(client.request({ op: 2 }, { timeoutMs: 50, signal: ac.signal })));
        setImmediate(() => ac.abort());
      } else pending.push(track(client.request({ op: 3 }, { timeoutMs: 50 })));
    }
    if (batch === 49) {
      await turns(1);
      ma.close('end of test'); // whatever is still pending fails now
    } else {
      await turns(2);
      clock.advance(25);
      await turns(2);
      clock.advance(30);
      await turns(2);
    }
  }
  await Promise.all(pending);
  await turns(3); // the far side learns of the close and its handlers see their signals abort
  clock.advance(DESTROY_AFTER_CLOSE_MS);
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  t.log(`seed ${seed}: ${JSON.stringify(counts)}`);
  t.is(total, issued);
  t.is(issued, 10_000);
  for (const name of [
    'ok',
    'NotFoundError',
    'DeadlineExceededError',
    'CancelledError',
    'ConnectionClosedError',
  ]) {
    t.true((counts[name] ?? 0) > 0, `some ${name}`);
  }
  t.is(client.inFlight, 0, 'every permit returned');
  t.is(server.handling, 0, 'every handler finished');
  t.is(clock.pendingTimers, 0, 'every timer cancelled');
});

test('a body above the channel max fails that request (no leaked permit); an oversized response becomes an error status', async t => {
  const clock = new ManualClock();
  const [da, db] = createDuplexPair();
  const channels = [{ id: 1, maxMessageBytes: 1000 }];
  const ma = new Mux(da, { channels, clock, pingIntervalMs: 0 });
  const mb = new Mux(db, { channels, clock, pingIntervalMs: 0 });
  const client = new RpcConnection(ma, { channelId: 1, clock });
  const server = new RpcConnection(mb, { channelId: 1, clock });
  server.setHandler(() => ({ body: Buffer.alloc(5000) }));
  await t.throwsAsync(client.request({ body: Buffer.alloc(2000) }, { timeoutMs: 100 }), {
    name: 'InvalidArgumentError',
  });
  t.is(client.inFlight, 0);
  const err = await t.throwsAsync(client.request({ body: Buffer.alloc(10) }, { timeoutMs: 100 }));
  t.is(err?.name, 'InternalError');
  t.regex(err?.message ?? '', /above the channel's limit/);
  t.is(client.inFlight, 0);
  t.throws(() => new RpcConnection(ma, { channelId: 9 }), { name: 'InvalidArgumentError' });
});

test('running handlers see their signal abort when the connection closes', async t => {
  const { client, server, mb } = setup();
  let ctx!: HandlerContext;
  server.setHandler((_req, c) => {
    ctx = c;
    return new Promise(() => {});
  });
  const p = client.request({}, { timeoutMs: 10_000 });
  p.catch(() => {});
  await turns();
  const signal = ctx.signal;
  t.false(signal.aborted);
  mb.close('server going away');
  t.true(signal.aborted);
  t.is((signal.reason as Error).name, 'ConnectionClosedError');
  await t.throwsAsync(p, { name: 'ConnectionClosedError' });
});
