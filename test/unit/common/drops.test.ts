/**
 * The drop ledger: totals by component and reason that outlive the counters that made
 * them, and debug lines rate-limited per component and reason (time from a ManualClock).
 */
import test from 'ava';
import pino from 'pino';
import { Writable } from 'node:stream';
import { DropCounter, DropLedger, ManualClock, isDropLogger } from '../../../src/common';

interface Line {
  obj: Record<string, unknown>;
  msg: string;
}

function recordingLogger(): { lines: Line[]; debug(obj: object, msg: string): void } {
  const lines: Line[] = [];
  return { lines, debug: (obj, msg) => lines.push({ obj: { ...obj }, msg }) };
}

test('totals survive the counters that made them', t => {
  const ledger = new DropLedger();
  let sender: DropCounter<'ttl_expired' | 'shutdown'> | undefined = new DropCounter(
    'peer_sender',
    ledger
  );
  sender.add('ttl_expired', 3);
  sender.add('shutdown');
  sender = undefined; // the sender is gone
  const next = new DropCounter<'ttl_expired'>('peer_sender', ledger);
  next.add('ttl_expired', 2);
  t.is(next.get('ttl_expired'), 2, 'a counter still reports its own drops');
  t.is(ledger.get('peer_sender', 'ttl_expired'), 5);
  t.deepEqual(ledger.snapshot(), { ttl_expired: 5, shutdown: 1 });
  t.is(ledger.total(), 6);
  t.is(sender, undefined);
});

test('snapshot sums reasons over the components asked for', t => {
  const ledger = new DropLedger();
  new DropCounter('cluster', ledger).add('duplicate', 2);
  new DropCounter('transport.connection', ledger).add('duplicate', 7);
  new DropCounter('peer_sender', ledger).add('ttl_expired');
  t.deepEqual(ledger.snapshot(['cluster', 'peer_sender']), { duplicate: 2, ttl_expired: 1 });
  t.deepEqual(ledger.snapshot(), { duplicate: 9, ttl_expired: 1 });
  t.deepEqual(ledger.byComponent(), {
    cluster: { duplicate: 2 },
    'transport.connection': { duplicate: 7 },
    peer_sender: { ttl_expired: 1 },
  });
});

test('a counter without a ledger counts locally', t => {
  const c = new DropCounter<'x' | 'y'>();
  c.add('x', 2);
  c.add('y');
  t.is(c.get('x'), 2);
  t.is(c.total(), 3);
  t.deepEqual(c.snapshot(), { x: 2, y: 1 });
});

test('the first drop is logged at once, then at most one line per interval with the count since', t => {
  const clock = new ManualClock(1000);
  const log = recordingLogger();
  const ledger = new DropLedger({ clock, logger: log, logIntervalMs: 10_000 });
  const sub = new DropCounter('subscription', ledger);
  sub.add('slow_consumer_drop_oldest');
  t.is(log.lines.length, 1);
  t.like(log.lines[0]?.obj, {
    source: 'subscription',
    reason: 'slow_consumer_drop_oldest',
    dropped: 1,
    total: 1,
    first: true,
  });
  // A burst inside the interval: no line yet.
  for (let i = 0; i < 50; i++) {
    clock.advance(100);
    sub.add('slow_consumer_drop_oldest');
  }
  t.is(log.lines.length, 1);
  // The interval ends: one line with the 50 since.
  clock.advance(5000);
  t.is(log.lines.length, 2);
  t.like(log.lines[1]?.obj, { dropped: 50, total: 51, since_ms: 10_000 });
  // Quiet: nothing more, no timer left ticking.
  clock.advance(60_000);
  t.is(log.lines.length, 2);
  // After a quiet interval the next drop is logged at once.
  sub.add('slow_consumer_drop_oldest', 4);
  t.is(log.lines.length, 3);
  t.like(log.lines[2]?.obj, { dropped: 4, total: 55, since_ms: 60_000 });
});

test('the rate limit is per component and reason', t => {
  const clock = new ManualClock();
  const log = recordingLogger();
  const ledger = new DropLedger({ clock, logger: log });
  const a = new DropCounter('cluster', ledger);
  const b = new DropCounter('peer_sender', ledger);
  a.add('duplicate');
  a.add('unknown_peer');
  b.add('duplicate');
  a.add('duplicate');
  t.deepEqual(
    log.lines.map(l => `${String(l.obj.source)}/${String(l.obj.reason)}`),
    ['cluster/duplicate', 'cluster/unknown_peer', 'peer_sender/duplicate']
  );
  clock.advance(10_000);
  t.is(log.lines.length, 4);
  t.like(log.lines[3]?.obj, { source: 'cluster', reason: 'duplicate', dropped: 1, total: 2 });
});

test('flush logs what is pending and stops the timers', t => {
  const clock = new ManualClock();
  const log = recordingLogger();
  const ledger = new DropLedger({ clock, logger: log });
  const c = new DropCounter('mux', ledger);
  c.add('queue_full');
  c.add('queue_full', 9);
  clock.advance(1000);
  ledger.flush();
  t.is(log.lines.length, 2);
  t.like(log.lines[1]?.obj, { dropped: 9, total: 10, since_ms: 1000 });
  clock.advance(20_000);
  t.is(log.lines.length, 2);
});

test('a pino logger takes the lines at debug', t => {
  const out: string[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(chunk.toString());
      cb();
    },
  });
  const logger = pino({ level: 'debug' }, dest).child({ component: 'drops' });
  t.true(isDropLogger(logger));
  t.false(isDropLogger({ warn: () => undefined }));
  const clock = new ManualClock();
  const ledger = new DropLedger({ clock, logger });
  new DropCounter('node', ledger).add('no_subscribers');
  const line = JSON.parse(out.join('')) as Record<string, unknown>;
  t.like(line, {
    level: 20,
    component: 'drops',
    source: 'node',
    reason: 'no_subscribers',
    dropped: 1,
  });
  t.is(line.msg, 'first drop');
});

test('below debug the ledger only counts: no line, no timer', t => {
  const clock = new ManualClock();
  const lines: string[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    })
  );
  const ledger = new DropLedger({ clock, logger });
  const c = new DropCounter('cluster', ledger);
  c.add('duplicate');
  c.add('duplicate');
  t.is(ledger.get('cluster', 'duplicate'), 2);
  t.is(clock.pendingTimers, 0);
  t.deepEqual(lines, []);
  // Turned up at runtime: the next drop is logged, with what came before.
  logger.level = 'debug';
  c.add('duplicate');
  t.is(lines.length, 1);
  t.like(JSON.parse(lines[0] ?? '{}') as object, { dropped: 3, total: 3, first: true });
});
