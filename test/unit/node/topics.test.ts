import test from 'ava';
import fc from 'fast-check';
import { TopicTrie, patternMatches, validatePattern, validateTopic } from '../../../src/node';

test('valid topics and patterns pass', t => {
  t.deepEqual(validateTopic('orders.eu.created'), ['orders', 'eu', 'created']);
  t.deepEqual(validatePattern('orders.*.>'), ['orders', '*', '>']);
  t.notThrows(() => validateTopic('a_b-c.D9'));
});

for (const [topic, why] of [
  ['', 'empty'],
  ['a..b', 'empty token'],
  ['.a', 'empty token'],
  ['a.', 'empty token'],
  ['a.*', 'wildcard'],
  ['a.>', 'wildcard'],
  ['a b', 'invalid token'],
  ['a.b$', 'invalid token'],
  ['x'.repeat(1025), 'characters long'],
] as const) {
  test(`topic ${JSON.stringify(topic.slice(0, 20))} is rejected (${why})`, t => {
    const err = t.throws(() => validateTopic(topic));
    t.is(err?.name, 'InvalidArgumentError');
    t.true(err?.message.includes(why));
  });
}

for (const pattern of ['a.>.b', '>.a', 'a..b', 'a.b*', 'a.**', '']) {
  test(`pattern ${JSON.stringify(pattern)} is rejected`, t => {
    const err = t.throws(() => validatePattern(pattern));
    t.is(err?.name, 'InvalidArgumentError');
  });
}

test('trie matching: exact, *, > and removal', t => {
  const trie = new TopicTrie<string>();
  trie.insert('a.b.c', 'exact');
  trie.insert('a.*.c', 'star');
  trie.insert('a.>', 'tail');
  trie.insert('>', 'all');
  trie.insert('*', 'one');
  t.deepEqual([...trie.match('a.b.c')].sort(), ['all', 'exact', 'star', 'tail']);
  t.deepEqual([...trie.match('a')].sort(), ['all', 'one']);
  t.deepEqual([...trie.match('a.x')].sort(), ['all', 'tail']);
  t.true(trie.remove('a.*.c', 'star'));
  t.false(trie.remove('a.*.c', 'star'));
  t.deepEqual([...trie.match('a.b.c')].sort(), ['all', 'exact', 'tail']);
  t.is(trie.size, 4);
});

test('a value under one pattern twice counts once; removing all leaves an empty trie', t => {
  const trie = new TopicTrie<number>();
  trie.insert('x.y', 1);
  trie.insert('x.y', 1);
  t.is(trie.size, 1);
  t.true(trie.remove('x.y', 1));
  t.is(trie.size, 0);
  t.deepEqual(trie.match('x.y'), []);
});

const token = fc.constantFrom('a', 'b', 'c', 'orders', 'x-1', 'Z_9');
const topicArb = fc.array(token, { minLength: 1, maxLength: 5 }).map(ts => ts.join('.'));
const patternArb = fc
  .tuple(fc.array(fc.oneof(token, fc.constant('*')), { minLength: 1, maxLength: 5 }), fc.boolean())
  .map(([ts, tail]) => (tail ? [...ts.slice(0, -1), '>'] : ts).join('.'));

test('property: the trie agrees with the naive reference matcher', t => {
  fc.assert(
    fc.property(
      fc.uniqueArray(patternArb, { maxLength: 30 }),
      fc.array(topicArb, { minLength: 1, maxLength: 20 }),
      fc.array(fc.nat(), { maxLength: 10 }),
      (patterns, topics, removals) => {
        const trie = new TopicTrie<string>();
        const live = new Set(patterns);
        for (const p of patterns) trie.insert(p, p);
        for (const r of removals) {
          if (patterns.length === 0) break;
          const p = patterns[r % patterns.length];
          trie.remove(p, p);
          live.delete(p);
        }
        for (const topic of topics) {
          const expected = [...live].filter(p => patternMatches(p, topic)).sort();
          const got = [...trie.match(topic)].sort();
          if (JSON.stringify(expected) !== JSON.stringify(got)) return false;
        }
        return true;
      }
    ),
    { numRuns: 300 }
  );
  t.pass();
});
