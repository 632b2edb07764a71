import test from 'ava';
import { rendezvousOwner } from '../../../src/node';

const keys = Array.from({ length: 30_000 }, (_, i) => `order-${i}`);

test('the owner of a key is stable and does not depend on the order of the members', t => {
  const members = ['meshwire-0', 'meshwire-1', 'meshwire-2', 'meshwire-3'];
  const reversed = [...members].reverse();
  for (const k of keys.slice(0, 2000)) {
    const owner = rendezvousOwner(k, members);
    t.true(members.includes(owner as string));
    if (rendezvousOwner(k, reversed) !== owner || rendezvousOwner(k, members) !== owner) {
      t.fail(`key ${k} changed owner`);
      return;
    }
  }
  t.is(rendezvousOwner('k', []), undefined);
  t.is(rendezvousOwner('k', ['solo']), 'solo');
});

test('keys are balanced over the members (each within 5% of its share)', t => {
  for (const members of [
    ['a', 'b', 'c'],
    ['meshwire-0', 'meshwire-1', 'meshwire-2', 'meshwire-3', 'meshwire-4'],
    ['node-1', 'node-2', 'node-3', 'node-4', 'node-5', 'node-6', 'node-7', 'node-8'],
  ]) {
    const counts = new Map<string, number>(members.map(m => [m, 0]));
    for (const k of keys) {
      const o = rendezvousOwner(k, members) as string;
      counts.set(o, (counts.get(o) ?? 0) + 1);
    }
    const share = keys.length / members.length;
    for (const [m, n] of counts) {
      t.true(
        Math.abs(n - share) < share * 0.05,
        `${m} owns ${n} of ${keys.length} (share ${share})`
      );
    }
  }
});

test('when a member leaves only its keys move, spread over the others; when it returns they move back', t => {
  const members = ['a', 'b', 'c', 'd'];
  const without = ['a', 'b', 'd'];
  const movedTo = new Map<string, number>();
  for (const k of keys) {
    const before = rendezvousOwner(k, members) as string;
    const after = rendezvousOwner(k, without) as string;
    if (before !== 'c') {
      if (after !== before) {
        t.fail(`key ${k} moved from ${before} to ${after} though ${before} stayed`);
        return;
      }
    } else {
      movedTo.set(after, (movedTo.get(after) ?? 0) + 1);
    }
  }
  const moved = [...movedTo.values()].reduce((a, b) => a + b, 0);
  t.true(Math.abs(moved - keys.length / 4) < keys.length * 0.02, `moved ${moved}`);
  for (const m of without) {
    t.true((movedTo.get(m) ?? 0) > moved / 3 - moved * 0.1, `${m} took ${movedTo.get(m)}`);
  }
});
