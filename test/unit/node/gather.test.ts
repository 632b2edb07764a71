/**
 * The pure RequestMany logic (src/node/gather.ts) on a manual clock, and the reply
 * table's multi-reply entries: stall, timeout, max_replies and all_answered are
 * deterministic here.
 */
import test from 'ava';
import { InvalidArgumentError, ManualClock } from '../../../src/common';
import type { GatherEndReason, GatherLimits } from '../../../src/node';
import { Gather, MAX_GATHER_REPLIES, ReplyTable } from '../../../src/node';
import { gatherLimits } from '../../../src/node/request-many';
import { encodeMessageBody, decodeMessageBody, ALL_SUBSCRIBERS } from '../../../src/dispatch';
import { Router } from '../../../src/node';

const reply = (payload: string, responderPeer = 'n1') => ({
  reply: { id: '', topic: '', payload: Buffer.from(payload), headers: {} },
  responderPeer,
});

function run(limits: Partial<GatherLimits>) {
  const clock = new ManualClock();
  const got: string[] = [];
  const ends: GatherEndReason[] = [];
  const endedAt: number[] = [];
  const gather = new Gather(
    clock,
    { timeoutMs: 10_000, maxReplies: MAX_GATHER_REPLIES, stallMs: 0, ...limits },
    {
      reply: r => got.push(r.reply.payload.toString()),
      end: reason => {
        ends.push(reason);
        endedAt.push(clock.now());
      },
    }
  );
  return { clock, gather, got, ends, endedAt };
}

test('timeout: ends at timeout_ms with the replies so far, once', t => {
  const { clock, gather, got, ends, endedAt } = run({ timeoutMs: 1000 });
  gather.delivered(5);
  clock.advance(300);
  gather.reply(reply('a'));
  clock.advance(699);
  t.deepEqual(ends, []);
  clock.advance(1);
  t.deepEqual(ends, ['timeout']);
  t.deepEqual(endedAt, [1000]);
  gather.reply(reply('late'));
  clock.advance(10_000);
  t.deepEqual(got, ['a'], 'nothing after the end');
  t.deepEqual(ends, ['timeout'], 'ended once');
});

test('stall: ends stall_ms after the latest reply, never before the first', t => {
  const { clock, gather, ends, endedAt } = run({ timeoutMs: 60_000, stallMs: 500 });
  gather.delivered(10);
  clock.advance(5000);
  t.deepEqual(ends, [], 'no stall end before the first reply');
  gather.reply(reply('a'));
  clock.advance(400);
  gather.reply(reply('b')); // at 5400: the stall end moves to 5900
  clock.advance(499);
  t.deepEqual(ends, []);
  clock.advance(1);
  t.deepEqual(ends, ['stall']);
  t.deepEqual(endedAt, [5900]);
});

test('max_replies: ends at the n-th reply', t => {
  const { gather, got, ends } = run({ maxReplies: 2 });
  gather.reply(reply('a'));
  t.deepEqual(ends, []);
  gather.reply(reply('b'));
  t.deepEqual(ends, ['max_replies']);
  gather.reply(reply('c'));
  t.deepEqual(got, ['a', 'b']);
});

test('all_answered: as many replies as deliveries, whichever comes last', t => {
  const early = run({});
  early.gather.delivered(2);
  early.gather.reply(reply('a'));
  t.deepEqual(early.ends, []);
  early.gather.reply(reply('b'));
  t.deepEqual(early.ends, ['all_answered']);
  // Replies before the peers' delivery counts arrived.
  const late = run({});
  late.gather.reply(reply('a'));
  late.gather.reply(reply('b'));
  t.deepEqual(late.ends, []);
  late.gather.delivered(2);
  t.deepEqual(late.ends, ['all_answered']);
});

test('no responders: 0 deliveries and no reply ends at once', t => {
  const { gather, ends } = run({});
  gather.delivered(0);
  t.deepEqual(ends, ['no_responders']);
});

test('an outside end (cancel) stops the timers and ignores later replies', t => {
  const { clock, gather, got, ends } = run({ timeoutMs: 1000, stallMs: 100 });
  gather.reply(reply('a'));
  gather.end('cancelled');
  gather.reply(reply('b'));
  clock.advance(5000);
  t.deepEqual(ends, ['cancelled']);
  t.deepEqual(got, ['a']);
  t.is(gather.ended, 'cancelled');
});

test('gatherLimits: defaults, and each bound with its field named', t => {
  t.deepEqual(gatherLimits({}, 30_000), {
    timeoutMs: 30_000,
    maxReplies: MAX_GATHER_REPLIES,
    stallMs: 0,
  });
  t.deepEqual(gatherLimits({ timeoutMs: 5, maxReplies: 3, stallMs: 7 }, 30_000), {
    timeoutMs: 5,
    maxReplies: 3,
    stallMs: 7,
  });
  for (const [opts, field] of [
    [{ maxReplies: MAX_GATHER_REPLIES + 1 }, 'max_replies'],
    [{ timeoutMs: 300_001 }, 'timeout_ms'],
    [{ stallMs: 300_001 }, 'stall_ms'],
    [{ stallMs: -1 }, 'stall_ms'],
    [{ timeoutMs: 1.5 }, 'timeout_ms'],
  ] as const) {
    const err = t.throws(() => gatherLimits(opts, 30_000), { instanceOf: InvalidArgumentError });
    t.regex(err?.message ?? '', new RegExp(`^request_many: ${field} `));
  }
});

test('reply table: a RequestMany entry takes many replies until closed, then says it ended', t => {
  const table = new ReplyTable(new ManualClock(), 'n1');
  const got: string[] = [];
  const entry = table.registerMany(
    'svc.x',
    r => got.push(`${r.reply.payload.toString()}@${r.reply.topic}`),
    () => got.push('stopped')
  );
  const parsed = table.parse(entry.token);
  t.is(parsed?.issuer, 'n1');
  const opaque = parsed?.opaque as string;
  t.true(table.isGather(opaque));
  t.true(table.resolve(opaque, reply('a')));
  t.true(table.resolve(opaque, reply('b')));
  t.deepEqual(got, ['a@svc.x', 'b@svc.x']);
  entry.close();
  entry.close();
  t.false(table.has(opaque));
  t.is(table.resolve(opaque, reply('c')), 'gather ended');
  t.is(table.gatherCount, 0);
  // closeAll tells open gathers the node stopped.
  table.registerMany(
    'svc.y',
    () => undefined,
    err => got.push(`stopped: ${err.message}`)
  );
  table.closeAll(new Error('bye'));
  t.deepEqual(got.slice(2), ['stopped: bye']);
});

test('wire: a message body carries the reply_to of its deliveries (flag 32)', t => {
  const msg = { id: 'i', topic: 't.x', payload: Buffer.from('p'), headers: {} };
  const withToken = decodeMessageBody(
    encodeMessageBody(msg, 'o', { ...ALL_SUBSCRIBERS, groups: ['g'], replyTo: 'tok~en' }, true, 9),
    {}
  );
  t.is(withToken.scope.replyTo, 'tok~en');
  t.deepEqual(withToken.scope.groups, ['g']);
  t.is(withToken.seq, 9);
  t.is(withToken.message.payload.toString(), 'p');
  const without = decodeMessageBody(encodeMessageBody(msg, 'o', ALL_SUBSCRIBERS), {});
  t.is(without.scope.replyTo, undefined);
});

test('router: deliveries of a published message carry its reply_to', t => {
  const router = new Router();
  const plain = router.subscribe({ patterns: ['t.>'], bufferSize: 8 });
  const g1 = router.subscribe({ patterns: ['t.>'], queueGroup: 'g', bufferSize: 8 });
  const g2 = router.subscribe({ patterns: ['t.>'], queueGroup: 'g', bufferSize: 8 });
  const msg = { id: 'i', topic: 't.x', payload: Buffer.alloc(0), headers: {} };
  t.is(router.publish(msg, 'n1', false, 'tok'), 2);
  t.true(router.publishToGroup(msg, 'n1', 'g', 'tok2'));
  const all = [plain, g1, g2].flatMap(s => s.take()?.deliveries ?? []);
  t.deepEqual(all.map(d => d.replyTo).sort(), ['tok', 'tok', 'tok2']);
  t.is(router.publish(msg, 'n1'), 2);
  t.is(plain.take()?.deliveries[0].replyTo, '', 'a plain message has none');
});
