/** Test helpers for the mux: event-loop turns and a rate-limited link on a ManualClock. */
import { Duplex } from 'node:stream';
import type { ManualClock } from '../../../src/common';

/** Lets setImmediate-scheduled work (the mux's pump) run, `n` turns. */
export async function turns(n = 3): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>(r => setImmediate(r));
}

class LinkEnd extends Duplex {
  peer?: LinkEnd;
  /** Like a kernel socket buffer: a write completes once it fits here. */
  kernel: Buffer[] = [];
  kernelBytes = 0;
  kernelCapacity = 0;
  waiting: { chunk: Buffer; cb: (err?: Error | null) => void }[] = [];

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.waiting.push({ chunk, cb });
    this.admit();
  }
  override _read(): void {}

  private admit(): void {
    while (this.waiting.length > 0 && this.kernelBytes < this.kernelCapacity) {
      const w = this.waiting.shift() as { chunk: Buffer; cb: (err?: Error | null) => void };
      this.kernel.push(w.chunk);
      this.kernelBytes += w.chunk.length;
      w.cb();
    }
  }

  /** Delivers up to `budget` bytes to the peer; returns bytes delivered. */
  deliver(budget: number): number {
    let sent = 0;
    while (budget > 0 && this.kernel.length > 0) {
      const head = this.kernel[0];
      const n = Math.min(budget, head.length);
      this.peer?.push(head.subarray(0, n));
      sent += n;
      budget -= n;
      this.kernelBytes -= n;
      if (n === head.length) this.kernel.shift();
      else this.kernel[0] = head.subarray(n);
    }
    this.admit();
    return sent;
  }
}

/**
 * A pair of duplexes joined by a link that carries `bytesPerMs` each way per
 * millisecond of the ManualClock. A write completes once it fits in a "kernel" buffer of
 * `kernelBytes` that the link drains at its rate, so the writer sees backpressure as on
 * a real, slower network.
 */
export function createThrottledPair(
  clock: ManualClock,
  bytesPerMs: number,
  highWaterMark = 16 * 1024,
  kernelBytes = 32 * 1024
): { a: Duplex; b: Duplex; tick: (ms?: number) => Promise<void> } {
  const a = new LinkEnd({ writableHighWaterMark: highWaterMark });
  const b = new LinkEnd({ writableHighWaterMark: highWaterMark });
  a.kernelCapacity = b.kernelCapacity = kernelBytes;
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

/**
 * A duplex whose writes never complete until `release()`: the writer sees a link that
 * has stopped (a full send buffer). Its readable side is fed with `feed()`.
 */
export function createStuckDuplex(): { d: Duplex; release: () => void; written: Buffer[] } {
  let held: (() => void)[] = [];
  let stuck = true;
  const written: Buffer[] = [];
  const d = new Duplex({
    writableHighWaterMark: 1,
    read() {},
    write(chunk: Buffer, _enc, cb) {
      written.push(chunk);
      if (stuck) held.push(() => cb());
      else cb();
    },
  });
  const release = () => {
    stuck = false;
    const h = held;
    held = [];
    for (const cb of h) cb();
  };
  return { d, release, written };
}
