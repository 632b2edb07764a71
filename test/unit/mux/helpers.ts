/** Test helpers for the mux: event-loop turns and a rate-limited link on a ManualClock. */
import { Duplex } from 'node:stream';
import type { ManualClock } from '../../../src/common';

/** Lets setImmediate-scheduled work (the mux's pump) run, `n` turns. */
export async function turns(n = 3): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>(r => setImmediate(r));
}

class LinkEnd extends Duplex {
  peer?: LinkEnd;
  queue: { chunk: Buffer; cb: (err?: Error | null) => void }[] = [];

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.queue.push({ chunk, cb });
  }
  override _read(): void {}

  /** Delivers up to `budget` bytes to the peer; returns bytes delivered. */
  deliver(budget: number): number {
    let sent = 0;
    while (budget > 0 && this.queue.length > 0) {
      const head = this.queue[0];
      const n = Math.min(budget, head.chunk.length);
      this.peer?.push(head.chunk.subarray(0, n));
      sent += n;
      budget -= n;
      if (n === head.chunk.length) {
        this.queue.shift();
        head.cb();
      } else {
        head.chunk = head.chunk.subarray(n);
      }
    }
    return sent;
  }
}

/**
 * A pair of duplexes joined by a link that carries `bytesPerMs` each way per
 * millisecond of the ManualClock. A write completes only when the link has carried it,
 * so the writer sees backpressure ('drain') exactly as on a real, slower network.
 */
export function createThrottledPair(
  clock: ManualClock,
  bytesPerMs: number,
  highWaterMark = 16 * 1024
): { a: Duplex; b: Duplex; tick: (ms?: number) => Promise<void> } {
  const a = new LinkEnd({ writableHighWaterMark: highWaterMark });
  const b = new LinkEnd({ writableHighWaterMark: highWaterMark });
  a.peer = b;
  b.peer = a;
  const tick = async (ms = 1): Promise<void> => {
    for (let i = 0; i < ms; i++) {
      clock.advance(1);
      a.deliver(bytesPerMs);
      b.deliver(bytesPerMs);
      await turns(2);
    }
  };
  return { a, b, tick };
}

/** Percentile of a list of numbers (tests only; benchmarks use an HDR histogram). */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

/** A deterministic PRNG (mulberry32) for tests that print their seed. */
export function rng(seed: number): () => number {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}
