/**
 * An in-memory pair of connected duplex streams: what one side writes, the other reads.
 * For tests and benchmarks of the layers above the transport (Node 20 has no
 * `stream.duplexPair`). Ending one side ends the other's readable side; destroying one
 * side closes the other.
 */
import { Duplex } from 'node:stream';

class MemoryDuplex extends Duplex {
  peer?: MemoryDuplex;

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const p = this.peer;
    if (p && !p.destroyed) p.push(chunk);
    cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    const p = this.peer;
    if (p && !p.destroyed) p.push(null);
    cb();
  }

  override _read(): void {
    // Data is pushed by the peer's writes.
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const p = this.peer;
    this.peer = undefined;
    if (p && !p.destroyed) {
      p.peer = undefined;
      p.destroy();
    }
    cb(err);
  }
}

/** Returns two connected duplex streams. */
export function createDuplexPair(): [Duplex, Duplex] {
  const a = new MemoryDuplex();
  const b = new MemoryDuplex();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
