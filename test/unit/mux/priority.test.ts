/**
 * Priority under load, on a simulated link of fixed rate driven by a ManualClock, so
 * latencies are exact virtual milliseconds (deterministic, not timed).
 */
import test from 'ava';
import { ManualClock } from '../../../src/common';
import { Mux } from '../../../src/mux';
import { createThrottledPair, percentile } from './helpers';

const BYTES_PER_MS = 16 * 1024;
const CHANNELS = [
  { id: 1, priority: 1, sendQueueCapacity: 16, maxMessageBytes: 256 * 1024 }, // bulk
  { id: 2, priority: 8, sendQueueCapacity: 64, maxMessageBytes: 1024 }, // latency-sensitive
];

async function run(loaded: boolean): Promise<{ p99: number; bulkBytes: number; samples: number }> {
  const clock = new ManualClock();
  const link = createThrottledPair(clock, BYTES_PER_MS);
  const a = new Mux(link.a, { channels: CHANNELS, clock, pingIntervalMs: 0 });
  const b = new Mux(link.b, { channels: CHANNELS, clock, pingIntervalMs: 0 });
  const sentAt = new Map<number, number>();
  const latencies: number[] = [];
  let bulkBytes = 0;
  b.on('message', (ch, p) => {
    if (ch === 2) {
      const seq = p.readUInt32BE(0);
      latencies.push(clock.now() - (sentAt.get(seq) as number));
    } else {
      bulkBytes += p.length;
    }
  });
  let seq = 0;
  for (let ms = 0; ms < 600; ms++) {
    // The bulk channel is kept saturated: its queue is always full.
    while (loaded && a.trySend(1, Buffer.alloc(200 * 1024))) {
      /* fill */
    }
    if (ms % 5 === 0) {
      const m = Buffer.alloc(200);
      m.writeUInt32BE(seq, 0);
      sentAt.set(seq++, clock.now());
      t_assert(a.trySend(2, m));
    }
    await link.tick(1);
  }
  a.close();
  b.close();
  return { p99: percentile(latencies, 99), bulkBytes, samples: latencies.length };
}

function t_assert(ok: boolean): void {
  if (!ok) throw new Error('high-priority trySend refused: its queue should never be full');
}

test('a high-priority channel keeps its p99 latency while a low-priority one saturates the link', async t => {
  const idle = await run(false);
  const busy = await run(true);
  t.log(`unloaded p99 ${idle.p99} ms, loaded p99 ${busy.p99} ms, bulk ${busy.bulkBytes} B`);
  t.true(busy.samples >= 110, 'nearly every high-priority message arrived');
  // The bulk channel really did saturate the link (>= 80% of its capacity) ...
  t.true(busy.bulkBytes > 0.8 * BYTES_PER_MS * 600, `bulk ${busy.bulkBytes}`);
  // ... and still the high-priority p99 stays within a small multiple of the unloaded one.
  // Writing everything queued into the duplex at once would put ~3 MB (190 ms) ahead.
  t.true(busy.p99 <= 6 * Math.max(1, idle.p99), `loaded p99 ${busy.p99} vs unloaded ${idle.p99}`);
});
