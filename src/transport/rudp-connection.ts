/**
 * One connection as a Node Duplex: ordered, reliable bytes; write() backpressure through
 * writableHighWaterMark and the engine's bounded send buffer; 'close'/'error' with a reason.
 */
import { Duplex } from 'node:stream';
import { ConnectionClosedError, LATENCY_TRACE, Stage, tracePending } from '../common';
import type { RudpEngine } from './engine/engine';
import { CloseCode } from './engine/types';
import type { ConnectionStats } from './engine/types';

/** What the connection needs from its socket. */
export interface ConnectionHost {
  /** Schedules a tick of this connection's engine in the next turn (batched). */
  kick(): void;
  /**
   * Written bytes are to leave: the first write of a run at once, later ones at the end
   * of the turn (flush policy, src/common/flush-policy.ts).
   */
  flushSoon(): void;
  /** The socket's clock. */
  now(): number;
}

/** An error carrying a close code for the peer (destroy(err) sends it). */
export interface CodedError extends Error {
  closeCode?: number;
}

/** Received bytes handed to the reader per push, at most (plus one packet). */
const COALESCE_BYTES = 64 * 1024;

export class RudpConnection extends Duplex {
  readonly remoteAddress: { host: string; port: number };
  private pendingWrite: ((err?: Error | null) => void) | null = null;
  private readEnded = false;
  private engineClosed = false;
  private quietAbort: { code: number; reason: string } | null = null;

  /** @internal created by RudpSocket */
  constructor(
    private readonly engine: RudpEngine,
    private readonly host: ConnectionHost,
    remote: { host: string; port: number },
    highWaterMark: number
  ) {
    super({ highWaterMark, allowHalfOpen: true });
    this.remoteAddress = remote;
  }

  /** @internal engine event */
  onReadable(): void {
    if (LATENCY_TRACE) tracePending(Stage.TRANSPORT_PULL);
    this.pull();
  }

  /** @internal engine event */
  onWritable(): void {
    const cb = this.pendingWrite;
    if (cb && !this.engine.sendBufferFull()) {
      this.pendingWrite = null;
      cb();
    }
  }

  /** @internal engine event */
  onClosed(err: Error | null): void {
    this.engineClosed = true;
    if (this.destroyed) return;
    if (err) {
      this.pendingWrite?.(err);
      this.pendingWrite = null;
      this.destroy(err);
      return;
    }
    this.pull();
    const cb = this.pendingWrite;
    this.pendingWrite = null;
    cb?.();
    if (!this.writableEnded) this.end();
  }

  private pull(): void {
    if (this.readEnded || this.destroyed) return;
    for (;;) {
      const c = this.readCoalesced();
      if (c === null) break;
      if (!this.push(c)) break;
    }
    if (this.engine.readEnded() || (this.engineClosed && this.engine.readableBytes() === 0)) {
      this.readEnded = true;
      this.push(null);
    }
    this.host.kick();
  }

  /**
   * The next contiguous bytes, joined up to COALESCE_BYTES: one push per batch of packets
   * instead of one per ~1.4 KB packet (each push costs more than the copy it saves).
   */
  private readCoalesced(): Buffer | null {
    const first = this.engine.read();
    if (first === null || first.length >= COALESCE_BYTES || this.engine.readableBytes() === 0)
      return first;
    const parts = [first];
    let total = first.length;
    while (total < COALESCE_BYTES) {
      const c = this.engine.read();
      if (c === null) break;
      parts.push(c);
      total += c.length;
    }
    return parts.length === 1 ? first : Buffer.concat(parts, total);
  }

  override _read(): void {
    this.pull();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.engineClosed) {
      cb(new ConnectionClosedError('connection closed'));
      return;
    }
    try {
      this.engine.write(chunk);
    } catch (err) {
      cb(err as Error);
      return;
    }
    this.host.flushSoon();
    if (this.engine.sendBufferFull()) this.pendingWrite = cb;
    else cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.engine.finish();
    this.host.kick();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.engineClosed && !err && this.writableFinished && this.readableEnded) {
      // autoDestroy after both directions ended: the engine finishes gracefully (our data
      // may still be unacknowledged; CLOSE follows once it is)
      this.engine.close();
      this.host.kick();
    } else if (!this.engineClosed) {
      this.engineClosed = true;
      const quiet = this.quietAbort;
      const code =
        (err as CodedError | null)?.closeCode ??
        (err ? CloseCode.APPLICATION : (quiet?.code ?? CloseCode.NO_ERROR));
      const reason = err ? err.message : (quiet?.reason ?? 'destroyed');
      this.engine.abort(code, reason, err, this.host.now());
      this.host.kick();
    }
    cb(err);
  }

  /**
   * @internal Ends the connection at once, with no 'error' here, while the peer gets a
   * CLOSE with this code and reason (an error there: its stream did not end by itself).
   */
  abortQuietly(code: number, reason: string): void {
    this.quietAbort = { code, reason };
    this.destroy();
  }

  /** Graceful close: everything written is delivered and acknowledged, then CLOSE. */
  close(): void {
    if (this.engineClosed) return;
    this.engine.close();
    if (!this.writableEnded) this.end();
    this.host.kick();
  }

  /** Counters: RTT, window, in flight, packets/bytes, retransmissions, drops by reason. */
  stats(): ConnectionStats {
    return this.engine.stats();
  }
}
