/**
 * A node's drops go through its drop ledger (src/common/drops.ts): logged at debug,
 * rate-limited, and kept in totals that outlive the subscription that dropped, which
 * /metrics exports. The ledger is handed to the node as a constructor option.
 */
import test from 'ava';
import type { Message } from '../../../src/common';
import { DropLedger, ManualClock } from '../../../src/common';
import type { TestNode } from '../../helpers/node';
import { startTestNode } from '../../helpers/node';

const msg = (topic: string): Message => ({
  id: '',
  topic,
  payload: Buffer.from('x'),
  headers: {},
});

interface Line {
  source: string;
  reason: string;
  dropped: number;
  total: number;
}

let node: TestNode;
const clock = new ManualClock();
const lines: Line[] = [];
const ledger = new DropLedger({
  clock,
  logger: { debug: obj => lines.push({ ...(obj as Line) }) },
});

test.before(async () => {
  node = await startTestNode({ nodeId: 'drops' }, true, { drops: ledger });
});
test.after.always(async () => {
  await node?.close();
});

/** The value of meshwire_messages_dropped_total{reason} on /metrics. */
async function exportedDrops(reason: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${node.server.metricsPort}/metrics`);
  const text = await res.text();
  const m = new RegExp(
    `^meshwire_messages_dropped_total\\{[^}]*reason="${reason}"[^}]*\\} (\\d+)$`,
    'm'
  ).exec(text);
  return m ? Number(m[1]) : NaN;
}

test.serial('the node records its drops in the ledger it was given, logged at debug', async t => {
  const mesh = node.server.node;
  t.is(mesh.dropLedger, ledger);
  await mesh.send(msg('nobody.listens'), { peerId: 'drops' });
  await mesh.send(msg('nobody.listens'), { peerId: 'drops' });
  t.is(ledger.get('node', 'no_subscribers'), 2);
  // The first drop at once; the second waits for the end of the interval.
  t.deepEqual(
    lines.map(l => [l.source, l.reason, l.dropped]),
    [['node', 'no_subscribers', 1]]
  );
  clock.advance(10_000);
  t.like(lines[1], { source: 'node', reason: 'no_subscribers', dropped: 1, total: 2 });
  t.is(await exportedDrops('no_subscribers'), 2);
});

test.serial('drops of a closed subscription stay in the exported total', async t => {
  const mesh = node.server.node;
  const sub = mesh.subscribe({ patterns: ['slow.>'], bufferSize: 1, policy: 'DROP_OLDEST' });
  for (let i = 0; i < 4; i++) await mesh.send(msg('slow.x'), { peerId: 'drops' });
  t.is(sub.drops.get('slow_consumer_drop_oldest'), 3, 'the subscription still reports its own');
  t.is(await exportedDrops('slow_consumer_drop_oldest'), 3);
  sub.close();
  t.is(await exportedDrops('slow_consumer_drop_oldest'), 3, 'not lost with the subscription');
  t.is(ledger.get('subscription', 'slow_consumer_drop_oldest'), 3);
});
