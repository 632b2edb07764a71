import { createHash } from 'node:crypto';
import test from 'ava';
import fc from 'fast-check';
import {
  FrameDecoder,
  FrameType,
  Mux,
  Reassembler,
  SendScheduler,
  createDuplexPair,
  encodeData,
  resolveChannels,
} from '../../../src/mux';
import { turns } from './helpers';

function digest(b: Buffer): string {
  return `${b.length}:${createHash('sha1').update(b).digest('hex')}`;
}

function sorted(m: Map<number, string[]>): [number, string[]][] {
  return [...m.entries()].sort((x, y) => x[0] - y[0]);
}

const channelsArb = fc
  .uniqueArray(fc.integer({ min: 0, max: 0xffff }), { minLength: 1, maxLength: 5 })
  .chain(ids =>
    fc.tuple(
      fc.constant(ids),
      fc.array(fc.integer({ min: 1, max: 8 }), { minLength: ids.length, maxLength: ids.length })
    )
  );

test('property: any mix of message sizes and channels is reassembled intact and in order per channel', t => {
  fc.assert(
    fc.property(
      channelsArb,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 5000 }), fc.nat()), { maxLength: 40 }),
      fc.integer({ min: 1, max: 1500 }),
      fc.integer({ min: 1, max: 997 }),
      ([ids, prios], msgs, fragmentBytes, chunk) => {
        const channels = resolveChannels(
          ids.map((id, i) => ({ id, priority: prios[i], maxMessageBytes: 5000 }))
        );
        const sched = new SendScheduler(channels, fragmentBytes);
        const sent = new Map<number, string[]>();
        for (const [c, size, fill] of msgs) {
          const id = ids[c % ids.length];
          const data = Buffer.alloc(size, fill % 256);
          if (size > 0) data[0] = sent.get(id)?.length ?? 0;
          if (!sched.hasRoom(id, size)) continue;
          sched.enqueue(id, { data });
          sent.set(id, [...(sent.get(id) ?? []), digest(data)]);
        }
        const wire: Buffer[] = [];
        for (let f = sched.nextFragment(); f; f = sched.nextFragment()) {
          t.true(f.end - f.start <= fragmentBytes);
          wire.push(encodeData(f.channelId, f.eof, f.msg.data, f.start, f.end));
        }
        const all = Buffer.concat(wire);
        const dec = new FrameDecoder();
        const re = new Reassembler(channels);
        const got = new Map<number, string[]>();
        for (let o = 0; o < all.length; o += chunk) {
          for (const fr of dec.write(all.subarray(o, o + chunk))) {
            if (fr.type !== FrameType.DATA) throw new Error('unexpected frame');
            const m = re.push(fr.channelId, fr.payload, fr.eof);
            if (m) got.set(fr.channelId, [...(got.get(fr.channelId) ?? []), digest(m)]);
          }
        }
        t.deepEqual(sorted(got), sorted(sent));
        t.is(re.bufferedBytes, 0);
      }
    ),
    { numRuns: 200 }
  );
});

test('property: the same through two Muxes over an in-memory duplex pair', async t => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 70_000 })), {
        maxLength: 25,
      }),
      fc.integer({ min: 64, max: 20_000 }),
      async (msgs, maxFragmentBytes) => {
        const channels = [
          { id: 1, priority: 1, maxMessageBytes: 70_000 },
          { id: 2, priority: 5, maxMessageBytes: 70_000 },
          { id: 9, priority: 2, urgent: true, maxMessageBytes: 70_000 },
        ];
        const [da, db] = createDuplexPair();
        const a = new Mux(da, { channels, maxFragmentBytes, pingIntervalMs: 0 });
        const b = new Mux(db, { channels, pingIntervalMs: 0 });
        const got = new Map<number, string[]>();
        b.on('message', (ch, p) => got.set(ch, [...(got.get(ch) ?? []), digest(p)]));
        const want = new Map<number, string[]>();
        for (const [c, size] of msgs) {
          const ch = channels[c].id;
          const data = Buffer.alloc(size, (size * 31 + c) % 251);
          want.set(ch, [...(want.get(ch) ?? []), digest(data)]);
          await a.send(ch, data);
        }
        // Bounded wait: each turn writes at least one batch.
        for (let i = 0; i < 200 && b.stats.messagesIn < msgs.length; i++) await turns(1);
        t.deepEqual(sorted(got), sorted(want));
        a.close();
        b.close();
      }
    ),
    { numRuns: 40 }
  );
});
