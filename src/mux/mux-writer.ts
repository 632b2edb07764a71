/**
 * The mux's writer: moves queued control frames and message fragments into the duplex,
 * in batches, when the flush policy (src/common/flush-policy.ts) says. A lone message is
 * written at the end of the turn (microtask); a connection under load and control frames
 * are written in the next turn (setImmediate), so sends made in one turn leave in one
 * write. Only as much is written as the duplex accepts before asking for 'drain'.
 */
import type { Duplex } from 'node:stream';
import { LATENCY_TRACE, Stage, traceMark } from '../common';
import { LARGE_BATCH_BYTES, MAX_WRITE_BATCH_BYTES } from './constants';
import { encodeDataHeader, encodeFrame } from './encode';
import type { Frame } from './frame-types';
import { FRAME_HEADER_BYTES } from './frame-types';
import type { SendScheduler } from './scheduler';

/** Counters the writer adds to (the mux's stats). */
export interface WriterStats {
  framesOut: number;
  bytesOut: number;
  messagesOut: number;
}

/** What the writer needs from its mux. */
export interface WriterHost {
  readonly stats: WriterStats;
  isClosed(): boolean;
  /** Messages of channel `id` were written: waiting senders may have room. */
  admitWaiters(id: number): void;
  /** A pump ended (flush waiters may be satisfied). */
  afterPump(): void;
}

export class MuxWriter {
  /** Control frames (ping, pong): always written before data. */
  readonly control: Buffer[] = [];
  private pumpScheduled = false;
  /** Data messages the last pump wrote: one or none means the connection is not under load. */
  private lastPumpMessages = 0;
  /** Messages queued since a lone pump was scheduled (0: none is). */
  private lonePump = 0;
  private needDrain = false;

  constructor(
    private readonly duplex: Duplex,
    private readonly scheduler: SendScheduler,
    private readonly writeBufferBytes: number,
    private readonly host: WriterHost
  ) {}

  /** Nothing queued (control or data). */
  idle(): boolean {
    return this.control.length === 0 && !this.scheduler.hasPending();
  }

  /** A message was queued; `batch`: nobody waits on it (never written on its own). */
  onQueued(batch: boolean): void {
    this.schedulePump(!batch && this.lastPumpMessages <= 1);
  }

  /**
   * Flush policy (src/common/flush-policy.ts). `lone`: a message on a connection whose
   * last pump carried at most one; end of turn (a microtask) instead of waiting a loop
   * iteration for company that is not coming; if more messages are queued before that
   * microtask runs, it defers to the next turn like any batch. Otherwise (under load,
   * control frames, re-pumps) next turn (setImmediate): sends made in the same turn are
   * written in one batch (one write for 64 small responses, not 64), behind the control
   * frames.
   */
  schedulePump(lone = false): void {
    if (this.pumpScheduled) {
      if (this.lonePump) this.lonePump++;
      return;
    }
    if (this.needDrain || this.host.isClosed()) return;
    this.pumpScheduled = true;
    if (lone) {
      this.lonePump = 1;
      queueMicrotask(this.pumpLone);
    } else {
      setImmediate(this.pump);
    }
  }

  private readonly pumpLone = (): void => {
    const queued = this.lonePump;
    this.lonePump = 0;
    if (queued > 1) setImmediate(this.pump);
    else this.pump();
  };

  private readonly pump = (): void => {
    this.pumpScheduled = false;
    if (this.host.isClosed() || this.needDrain) return;
    const d = this.duplex;
    let batch: Buffer[] = [];
    let batchBytes = 0;
    let written: (() => void)[] = [];
    const touched = new Set<number>();
    let messages = 0;
    const flush = (): void => {
      if (batch.length === 0) return;
      this.host.stats.bytesOut += batchBytes;
      if (LATENCY_TRACE) traceMark(Stage.MUX_FLUSH);
      if (batch.length === 1 || batchBytes < LARGE_BATCH_BYTES) {
        d.write(batch.length === 1 ? batch[0] : Buffer.concat(batch, batchBytes), this.onWriteDone);
      } else {
        // Large payloads: hand the views over corked (one writev on a socket), no copy.
        d.cork();
        const last = batch.length - 1;
        for (let i = 0; i < last; i++) d.write(batch[i]);
        d.write(batch[last], this.onWriteDone);
        d.uncork();
      }
      batch = [];
      batchBytes = 0;
      const cbs = written;
      written = [];
      for (const cb of cbs) cb();
    };
    for (;;) {
      if (d.writableLength + batchBytes >= this.writeBufferBytes) {
        // Full: wait for a write to complete (onWriteDone) or for 'drain'.
        this.needDrain = true;
        break;
      }
      const frame: Buffer | undefined = this.control.shift();
      if (frame) {
        batch.push(frame);
        batchBytes += frame.length;
      } else {
        const f = this.scheduler.nextFragment();
        if (!f) break;
        // Header plus a view of the message: the one copy happens when the batch is joined.
        batch.push(encodeDataHeader(f.channelId, f.eof, f.end - f.start));
        batch.push(f.msg.data.subarray(f.start, f.end));
        batchBytes += FRAME_HEADER_BYTES + f.end - f.start;
        if (f.eof) {
          this.host.stats.messagesOut++;
          messages++;
          if (f.msg.onWritten) written.push(f.msg.onWritten);
          touched.add(f.channelId);
        }
      }
      this.host.stats.framesOut++;
      if (batchBytes >= MAX_WRITE_BATCH_BYTES) {
        flush();
        if (this.host.isClosed()) return;
      }
    }
    flush();
    this.lastPumpMessages = messages;
    for (const id of touched) this.host.admitWaiters(id);
    if (!this.needDrain && (this.control.length > 0 || this.scheduler.hasPending())) {
      this.schedulePump();
    }
    this.host.afterPump();
  };

  /** A write completed: if the mux was waiting for room in the duplex, there may be some. */
  private readonly onWriteDone = (): void => {
    if (this.needDrain && this.duplex.writableLength < this.writeBufferBytes) {
      this.needDrain = false;
      this.schedulePump();
    }
  };

  /** The duplex's 'drain': room again. */
  readonly onDrain = (): void => {
    this.needDrain = false;
    this.schedulePump();
  };

  /** Queues a control frame: written first, with the next turn's batch. */
  sendControl(frame: Frame): void {
    this.control.push(encodeFrame(frame));
    this.schedulePump();
  }
}
