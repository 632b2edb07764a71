import test from 'ava';
import fc from 'fast-check';
import { DedupWindow, decodeMessageBody, encodeMessageBody } from '../../../src/dispatch';
import { DEDUP_BYTES_PER_ENTRY } from '../../../src/dispatch/dedup';
import { BatchEncoder, decodeBatch } from '../../../src/dispatch/wire';

/** The MESSAGE_BATCH format written the plain way: varint count, then varint length + body. */
function referenceBatch(items: Buffer[]): Buffer {
  const varint = (n: number): Buffer => {
    const out: number[] = [];
    while (n >= 0x80) {
      out.push((n & 0x7f) | 0x80);
      n = Math.floor(n / 0x80);
    }
    out.push(n);
    return Buffer.from(out);
  };
  return Buffer.concat([varint(items.length), ...items.flatMap(it => [varint(it.length), it])]);
}
import type { DeliveryScope } from '../../../src/dispatch';
import { InterestTable } from '../../../src/node/interest-table';

const text = fc.string({ unit: 'binary', maxLength: 30 });

test('property: message bodies round-trip (origin, id, topic, scope, payload)', t => {
  fc.assert(
    fc.property(
      text,
      text,
      text,
      fc.uint8Array({ maxLength: 2000 }),
      fc.record({
        allGroups: fc.boolean(),
        plain: fc.boolean(),
        groups: fc.array(text, { maxLength: 5 }),
      }),
      (origin, id, topic, payload, scope: DeliveryScope) => {
        const body = encodeMessageBody(
          { id, topic, payload: Buffer.from(payload), headers: {} },
          origin,
          scope
        );
        const d = decodeMessageBody(body, { h: 'v' });
        return (
          d.origin === origin &&
          d.message.id === id &&
          d.message.topic === topic &&
          Buffer.compare(d.message.payload, Buffer.from(payload)) === 0 &&
          d.message.headers.h === 'v' &&
          d.scope.allGroups === scope.allGroups &&
          d.scope.plain === scope.plain &&
          JSON.stringify(d.scope.groups) === JSON.stringify(scope.groups)
        );
      }
    ),
    { numRuns: 300 }
  );
  t.pass();
});

test('truncated or garbage bodies are protocol errors, never crashes', t => {
  const good = encodeMessageBody(
    { id: 'i', topic: 't.x', payload: Buffer.from('p'), headers: {} },
    'n',
    { allGroups: false, plain: true, groups: ['g'] }
  );
  for (let cut = 0; cut < good.length - 1; cut++) {
    try {
      decodeMessageBody(good.subarray(0, cut), {});
    } catch (err) {
      t.is((err as Error).name, 'ProtocolError');
    }
  }
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), bytes => {
      try {
        decodeMessageBody(Buffer.from(bytes), {});
        return true;
      } catch (err) {
        return (err as Error).name === 'ProtocolError';
      }
    })
  );
});

test('dedup window: repeats are caught within the window, memory is bounded', t => {
  const w = new DedupWindow(3, 2);
  t.true(w.firstSeen('a', 1));
  t.false(w.firstSeen('a', 1));
  t.true(w.firstSeen('b', 1), 'sequence numbers are per origin');
  for (const seq of [2, 3, 4]) t.true(w.firstSeen('a', seq));
  t.true(w.firstSeen('a', 1), 'the oldest number left the window of 3');
  // A third origin evicts the oldest one (a): memory stays bounded at 2 origins.
  t.true(w.firstSeen('c', 9));
  t.false(w.firstSeen('b', 1), 'b is still remembered');
  t.true(w.firstSeen('a', 4), 'a was forgotten');
  t.is(w.originCount, 2);
});

test('dedup window: an entry budget across origins forgets the oldest origins, never the current one', t => {
  const w = new DedupWindow(1000, 100, 256);
  for (let i = 0; i < 200; i++) t.true(w.firstSeen('old', i));
  for (let i = 0; i < 200; i++) t.true(w.firstSeen('new', i));
  t.true(w.bytes <= 256 * DEDUP_BYTES_PER_ENTRY, `bytes ${w.bytes}`);
  t.false(w.firstSeen('new', 150), 'the current origin keeps its window');
  t.true(w.firstSeen('old', 5), 'the oldest origin was forgotten');
  // numbers up to 2^53 work as keys
  t.true(w.firstSeen('big', 2 ** 53 - 1));
  t.false(w.firstSeen('big', 2 ** 53 - 1));
  t.true(w.firstSeen('big', 2 ** 32 + 7));
  t.true(w.firstSeen('big', 7));
});

test('interest plan: plain subscribers everywhere, each queue group once, local members first', t => {
  const table = new InterestTable();
  table.apply('b', {
    snapshot: true,
    add: [
      { pattern: 'orders.>', queueGroup: '' },
      { pattern: 'orders.*', queueGroup: 'w' },
    ],
    remove: [],
  });
  table.apply('c', {
    snapshot: true,
    add: [
      { pattern: 'orders.eu', queueGroup: 'w' },
      { pattern: 'billing.>', queueGroup: '' },
    ],
    remove: [],
  });
  const noLocal = () => false;
  const counts = new Map<string, number>();
  for (let i = 0; i < 100; i++) {
    const plan = table.plan('orders.eu', noLocal);
    const groupHolders = plan.filter(p => p.scope.groups.includes('w'));
    t.is(groupHolders.length, 1, 'one node per queue group');
    counts.set(groupHolders[0].peerId, (counts.get(groupHolders[0].peerId) ?? 0) + 1);
    t.true(plan.find(p => p.peerId === 'b')?.scope.plain ?? false);
    t.false(plan.find(p => p.peerId === 'c')?.scope.plain ?? false);
  }
  t.is(counts.get('b'), 50);
  t.is(counts.get('c'), 50);
  t.deepEqual(
    table.plan('orders.eu', g => g === 'w').map(p => p.peerId),
    ['b'],
    'with a local member, the group is served here'
  );
  t.deepEqual(table.plan('nothing.here', noLocal), []);
  table.apply('b', { snapshot: false, add: [], remove: [{ pattern: 'orders.>', queueGroup: '' }] });
  t.false(table.plan('orders.x', noLocal).some(p => p.scope.plain));
  table.forget('c');
  t.deepEqual(table.peerIds(), ['b']);
  t.is(table.pickResponder('billing.x'), undefined);
  t.is(table.pickResponder('orders.x'), 'b');
});

test('interest: invalid advertised patterns are ignored', t => {
  const table = new InterestTable();
  table.apply('b', {
    snapshot: true,
    add: [
      { pattern: 'a..b', queueGroup: '' },
      { pattern: 'ok', queueGroup: '' },
    ],
    remove: [],
  });
  t.deepEqual(table.of('b'), [{ pattern: 'ok', queueGroup: '' }]);
});

test('property: a MESSAGE_BATCH carries each message with its own headers, in order', t => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          id: text,
          topic: text,
          payload: fc.uint8Array({ maxLength: 300 }),
          headers: fc.dictionary(fc.string({ minLength: 1, maxLength: 10 }), text, { maxKeys: 4 }),
        }),
        { minLength: 1, maxLength: 20 }
      ),
      msgs => {
        const enc = new BatchEncoder(64 * 1024);
        const scope = { allGroups: true, plain: true, groups: [] };
        for (const m of msgs) {
          const msg = { ...m, payload: Buffer.from(m.payload) };
          enc.add(msg, 'origin', scope, enc.plan(msg, 'origin', scope));
        }
        const back = decodeBatch(enc.take()).map(b => decodeMessageBody(b, {}));
        return (
          back.length === msgs.length &&
          back.every(
            (d, i) =>
              d.message.id === msgs[i].id &&
              d.message.topic === msgs[i].topic &&
              Buffer.compare(d.message.payload, Buffer.from(msgs[i].payload)) === 0 &&
              JSON.stringify(d.message.headers) === JSON.stringify(msgs[i].headers) &&
              d.origin === 'origin'
          )
        );
      }
    ),
    { numRuns: 200 }
  );
  t.throws(() => decodeBatch(Buffer.from([5, 10, 1])), { name: 'ProtocolError' });
  // Found by the property above: a header named __proto__ must survive as a header.
  const odd = encodeMessageBody(
    {
      id: 'i',
      topic: 't',
      payload: Buffer.from('p'),
      headers: JSON.parse('{"__proto__":"x","a":"b"}') as Record<string, string>,
    },
    'o',
    { allGroups: true, plain: true, groups: [] },
    true
  );
  const back = decodeMessageBody(odd, {});
  t.deepEqual(Object.entries(back.message.headers), [
    ['__proto__', 'x'],
    ['a', 'b'],
  ]);
});

test('property: BatchEncoder writes exactly the reference batch of the encoded bodies, batch after batch', t => {
  const message = fc.record({
    id: text,
    topic: text,
    payload: fc.uint8Array({ maxLength: 3000 }),
    headers: fc.dictionary(fc.string({ minLength: 1, maxLength: 10 }), text, { maxKeys: 4 }),
  });
  const scope = fc.record({
    allGroups: fc.boolean(),
    plain: fc.boolean(),
    groups: fc.array(text, { maxLength: 3 }),
  });
  fc.assert(
    fc.property(
      // several batches through one encoder: the tail of its buffer is reused, and a small
      // capacity forces it to grow mid-batch
      fc.array(fc.array(fc.tuple(message, scope), { minLength: 1, maxLength: 12 }), {
        minLength: 1,
        maxLength: 4,
      }),
      fc.integer({ min: 16, max: 20_000 }),
      (batches, capacity) => {
        const enc = new BatchEncoder(capacity);
        const taken: Array<{ body: Buffer; expected: Buffer }> = [];
        for (const batch of batches) {
          const items: Buffer[] = [];
          for (const [m, sc] of batch) {
            const msg = { ...m, payload: Buffer.from(m.payload) };
            const plan = enc.plan(msg, 'node-x', sc);
            enc.add(msg, 'node-x', sc, plan);
            items.push(encodeMessageBody(msg, 'node-x', sc, true));
            if (plan.size !== items[items.length - 1].length) return false;
          }
          const total = items.reduce((n, b) => n + b.length, 0);
          if (enc.count !== batch.length || enc.bytes < total) return false;
          taken.push({ body: enc.take(), expected: referenceBatch(items) });
          if (enc.count !== 0 || enc.bytes !== 0) return false;
        }
        // earlier bodies are untouched by later batches (they share the encoder's buffer)
        return taken.every(x => x.body.equals(x.expected));
      }
    ),
    { numRuns: 300 }
  );
  t.pass();
});

test('property: dedup catches every repeat within the last window/2 ids and never flags a new id', t => {
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 64 }),
      fc.array(fc.integer({ min: 0, max: 80 }), { maxLength: 400 }),
      (window, ids) => {
        const w = new DedupWindow(window);
        const accepted: number[] = []; // ids accepted so far, newest last
        const half = Math.floor(window / 2);
        for (const id of ids) {
          const first = w.firstSeen('o', id);
          const recent = accepted.slice(-half).includes(id);
          const ever = accepted.includes(id);
          if (recent && first) return false; // a repeat within window/2 got through
          if (!ever && !first) return false; // a never-seen id was called a repeat
          if (first) accepted.push(id);
        }
        return true;
      }
    ),
    { numRuns: 500 }
  );
  t.pass();
});

test('property: dedup remembers exactly the last `window` ids per origin (growth and eviction)', t => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 300 }).chain(window =>
        fc.tuple(
          fc.constant(window),
          // ids from a space about twice the window: the table stays full, evictions
          // happen all the time, and most lookups are repeats
          fc.array(fc.tuple(fc.constantFrom('a', 'b'), fc.nat(2 * window + 2)), {
            minLength: 200,
            maxLength: 3000,
          })
        )
      ),
      ([window, seq]) => {
        const w = new DedupWindow(window);
        const model = new Map<string, number[]>([
          ['a', []],
          ['b', []],
        ]);
        for (const [origin, n] of seq) {
          const id = n;
          const remembered = model.get(origin)!;
          const expected = !remembered.includes(id);
          if (w.firstSeen(origin, id) !== expected) return false;
          if (expected) {
            remembered.push(id);
            if (remembered.length > window) remembered.shift();
          }
        }
        return true;
      }
    ),
    { numRuns: 200 }
  );
  t.pass();
});

test('message bodies round-trip strings of every kind in any order: ASCII, non-ASCII, long, lone surrogates (the short-string paths and the recent-string reuse)', t => {
  const strings = [
    'node-a',
    'nodé',
    'é',
    '\u00e9',
    'x'.repeat(64),
    'y'.repeat(65),
    '',
    'a\ud800',
    '😀',
    'node-a',
    'bench.ps.128',
  ];
  for (const origin of strings) {
    for (const topic of strings) {
      const msg = {
        id: `${topic}-id`,
        topic,
        payload: Buffer.from('p'),
        headers: { [origin || 'k']: topic },
      };
      const body = encodeMessageBody(
        msg,
        origin,
        { allGroups: true, plain: true, groups: [] },
        true
      );
      const d = decodeMessageBody(body, {});
      // what Buffer's own UTF-8 round trip gives (a lone surrogate becomes U+FFFD)
      const utf8 = (s: string): string => Buffer.from(s, 'utf8').toString('utf8');
      t.is(d.origin, utf8(origin));
      t.is(d.message.topic, utf8(topic));
      t.is(d.message.id, utf8(`${topic}-id`));
      t.deepEqual({ ...d.message.headers }, { [utf8(origin || 'k')]: utf8(topic) });
      t.is(d.message.payload.toString(), 'p');
    }
  }
});
