import test from 'ava';
import fc from 'fast-check';
import {
  CompiledRules,
  patternCovered,
  patternsIntersect,
  tokensMatch,
} from '../../../src/api/auth-patterns';

// Brute force: every topic over a small alphabet, one token longer than any pattern
// (a token no pattern names, "z", stands for all the others).
const ALPHABET = ['a', 'b', 'c', 'z'];
const MAX_LEN = 4;

function allTopics(maxLen: number): string[][] {
  const out: string[][] = [];
  let layer: string[][] = [[]];
  for (let len = 1; len <= maxLen; len++) {
    layer = layer.flatMap(t => ALPHABET.map(x => [...t, x]));
    out.push(...layer);
  }
  return out;
}
const TOPICS = allTopics(MAX_LEN + 1);

const literal = fc.constantFrom('a', 'b', 'c');
/** A valid pattern of 1..MAX_LEN tokens: literals and `*`, optionally ending with `>`. */
const pattern = fc
  .tuple(
    fc.array(fc.oneof(literal, fc.constant('*')), { minLength: 0, maxLength: MAX_LEN - 1 }),
    fc.oneof(literal, fc.constant('*'), fc.constant('>'))
  )
  .map(([init, last]) => [...init, last]);

const bruteCovered = (p: string[], allows: string[][]): boolean =>
  TOPICS.every(t => !tokensMatch(p, t) || allows.some(a => tokensMatch(a, t)));
const bruteIntersect = (a: string[], b: string[]): boolean =>
  TOPICS.some(t => tokensMatch(a, t) && tokensMatch(b, t));

test('tokensMatch follows the NATS wildcards', t => {
  const m = (p: string, topic: string): boolean => tokensMatch(p.split('.'), topic.split('.'));
  t.true(m('a.*', 'a.b'));
  t.false(m('a.*', 'a.b.c'));
  t.true(m('a.>', 'a.b.c'));
  t.false(m('a.>', 'a'));
  t.true(m('>', 'x'));
  t.false(m('a.b', 'a.c'));
});

test('pattern intersection agrees with a brute-force check', t => {
  fc.assert(
    fc.property(pattern, pattern, (a, b) => {
      t.is(patternsIntersect(a, b), bruteIntersect(a, b), `${a.join('.')} vs ${b.join('.')}`);
      return true;
    }),
    { numRuns: 2000 }
  );
});

test('coverage by a union of allow patterns agrees with a brute-force check', t => {
  fc.assert(
    fc.property(pattern, fc.array(pattern, { maxLength: 4 }), (p, allows) => {
      const got = patternCovered(p, allows);
      const want = bruteCovered(p, allows);
      if (got !== want) {
        t.fail(
          `${p.join('.')} covered by [${allows.map(a => a.join('.')).join(', ')}]: ${got} vs ${want}`
        );
      }
      return got === want;
    }),
    { numRuns: 3000 }
  );
  t.pass();
});

test('coverage needs the union when no single allow pattern suffices', t => {
  const s = (x: string): string[] => x.split('.');
  t.true(patternCovered(s('a.>'), [s('a.*'), s('a.*.>')]));
  t.false(patternCovered(s('a.>'), [s('a.*')]));
  t.true(patternCovered(s('a.*'), [s('a.b'), s('a.*')]));
  t.false(patternCovered(s('a.*'), [s('a.b'), s('a.c')]));
  t.true(patternCovered(s('*.b'), [s('>')]));
  t.false(patternCovered(s('>'), [s('*.>')]));
  t.true(patternCovered(s('>'), [s('*'), s('*.>')]));
});

test('publish: deny wins over allow and the refusal names the rule', t => {
  const r = new CompiledRules({ allow: ['orders.>'], deny: ['orders.secret.*'] });
  t.deepEqual(r.checkTopic('orders.created'), { ok: true });
  t.deepEqual(r.checkTopic('orders.secret.x'), {
    ok: false,
    rule: 'deny "orders.secret.*"',
    reason: 'denied',
  });
  t.deepEqual(r.checkTopic('billing.x'), {
    ok: false,
    rule: 'allow ["orders.>"]',
    reason: 'not_allowed',
  });
});

test('subscribe: a pattern is allowed only when every topic it matches is allowed', t => {
  const r = new CompiledRules({ allow: ['orders.>'], deny: ['orders.secret.>'] });
  t.true(r.checkPattern('orders.eu.*').ok);
  // orders.*.created also matches orders.secret.created.
  t.like(r.checkPattern('orders.*.created'), { ok: false, reason: 'denied' });
  // orders.> also matches orders.secret.x, which is denied.
  t.like(r.checkPattern('orders.>'), { ok: false, reason: 'denied' });
  // *.created also matches billing.created, which is not allowed.
  t.like(r.checkPattern('*.created'), { ok: false, reason: 'not_allowed' });
  t.like(r.checkPattern('orders.*'), { ok: true });
  t.like(new CompiledRules({ allow: [], deny: [] }).checkPattern('a'), { ok: false });
});

test('checkPattern agrees with brute force over allow and deny lists', t => {
  fc.assert(
    fc.property(
      pattern,
      fc.array(pattern, { maxLength: 3 }),
      fc.array(pattern, { maxLength: 2 }),
      (p, allow, deny) => {
        const rules = new CompiledRules({
          allow: allow.map(a => a.join('.')),
          deny: deny.map(d => d.join('.')),
        });
        const want = TOPICS.every(
          tp =>
            !tokensMatch(p, tp) ||
            (allow.some(a => tokensMatch(a, tp)) && !deny.some(d => tokensMatch(d, tp)))
        );
        return rules.checkPattern(p.join('.')).ok === want;
      }
    ),
    { numRuns: 2000 }
  );
  t.pass();
});
