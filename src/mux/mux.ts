/**
 * Mux: prioritized channels over one byte stream (any Node `stream.Duplex`: a TCP socket,
 * a reliable-UDP connection, an in-memory pair). Modelled on Tendermint's MConnection:
 * messages are cut into fragments with an EOF flag, a scheduler picks which channel's
 * fragment goes next, and ping/pong detects a dead peer.
 *
 * What differs from the seed, and why:
 * - Control frames (ping, pong, close) have their own queue that is always written
 *   first, and pongs are answered by the reader, never behind message handlers.
 * - Only as much is written into the duplex as it accepts before asking for 'drain':
 *   what sits in its buffer is ahead of everything, so this bounds how long an urgent
 *   or high-priority message waits behind bulk data already handed over.
 * - A malformed frame, an unknown channel or an oversized message closes the connection
 *   as a protocol violation: counted, reported through 'close', never thrown at a caller.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { Clock, DropLedger, MeshwireError, Timer } from '../common';
import { LATENCY_TRACE, Stage, traceMark, tracePending } from '../common';
import {
  CancelledError,
  ConnectionClosedError,
  DropCounter,
  InvalidArgumentError,
  ProtocolError,
  ResourceExhaustedError,
  systemClock,
} from '../common';
import type { ChannelDescriptor, ResolvedChannel } from './channel';
import { resolveChannels } from './channel';
import {
  DEFAULT_MAX_FRAGMENT_BYTES,
  DEFAULT_MAX_SEND_WAITERS,
  DEFAULT_PING_INTERVAL_MS,
  DEFAULT_PONG_TIMEOUT_MS,
  DESTROY_AFTER_CLOSE_MS,
  MAX_FRAME_PAYLOAD_BYTES,
  MAX_DEFAULT_WRITE_BUFFER_BYTES,
  LARGE_BATCH_BYTES,
  MAX_WRITE_BATCH_BYTES,
} from './constants';
import { FrameDecoder } from './decode';
import { encodeDataHeader, encodeFrame } from './encode';
import type { Frame } from './frame-types';
import { FRAME_HEADER_BYTES, FrameType } from './frame-types';
import { Reassembler } from './reassembler';
import type { QueuedMessage } from './scheduler';
import { SendScheduler } from './scheduler';

export interface MuxInit {
  /** The channels both sides declared (same ids on both ends). */
  channels: readonly ChannelDescriptor[];
  /** @default systemClock */
  clock?: Clock;
  /** Where this connection's drops are recorded (the node's ledger). @default none */
  drops?: DropLedger;
  /** Ping this long after the last pong; 0 turns keepalive off. @default DEFAULT_PING_INTERVAL_MS */
  pingIntervalMs?: number;
  /** Close when nothing (no pong, no frame) comes from the peer this long after a ping. @default DEFAULT_PONG_TIMEOUT_MS */
  pongTimeoutMs?: number;
  /** Largest fragment payload. @default DEFAULT_MAX_FRAGMENT_BYTES */
  maxFragmentBytes?: number;
  /** Largest number of send() calls waiting for room, per channel. @default DEFAULT_MAX_SEND_WAITERS */
  maxSendWaiters?: number;
  /**
   * Bytes the mux keeps written into the duplex and not yet taken by it. Everything there
   * is ahead of any later frame, however urgent: small keeps priorities sharp, large keeps
   * a slow-to-call-back transport busy.
   * @default the duplex's writableHighWaterMark, at most MAX_DEFAULT_WRITE_BUFFER_BYTES
   */
  writeBufferBytes?: number;
}

export interface SendOptions {
  /** Aborting rejects a send still waiting for room with CancelledError. */
  signal?: AbortSignal;
  /** Called once the message's last fragment has been handed to the connection. */
  onWritten?: () => void;
}

/** Why a mux closed. */
export type MuxCloseReason =
  | 'local'
  | 'peer_closed'
  | 'transport_closed'
  | 'transport_error'
  | 'protocol_error'
  | 'pong_timeout';

/** Drop reasons counted by `mux.drops`. */
export type MuxDropReason = 'queue_full' | 'unsent_on_close' | 'listener_error' | 'protocol_error';

export interface MuxStats {
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  messagesIn: number;
  messagesOut: number;
  pingsSent: number;
  pongsReceived: number;
}

interface Waiter {
  msg: QueuedMessage;
  resolve: () => void;
  reject: (err: Error) => void;
  cleanup?: () => void;
}

/** Events of a Mux. */
export interface MuxEvents {
  /** A whole message arrived on a channel. */
  message: [channelId: number, payload: Buffer];
  /** The mux closed; emitted once. */
  close: [err: MeshwireError, reason: MuxCloseReason];
}

export class Mux extends EventEmitter<MuxEvents> {
  readonly drops: DropCounter<MuxDropReason>;
  readonly stats: MuxStats = {
    framesIn: 0,
    framesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    messagesIn: 0,
    messagesOut: 0,
    pingsSent: 0,
    pongsReceived: 0,
  };

  private readonly duplex: Duplex;
  private readonly clock: Clock;
  private readonly channels = new Map<number, ResolvedChannel>();
  private readonly scheduler: SendScheduler;
  private readonly reassembler: Reassembler;
  private readonly decoder: FrameDecoder;
  private readonly waiters = new Map<number, Waiter[]>();
  private readonly maxSendWaiters: number;
  private readonly pingIntervalMs: number;
  private readonly pongTimeoutMs: number;
  private readonly control: Buffer[] = [];
  private pumpScheduled = false;
  /** Data messages the last pump wrote: one or none means the connection is not under load. */
  private lastPumpMessages = 0;
  /** Messages queued since a lone pump was scheduled (0: none is). */
  private lonePump = 0;
  private flushWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private needDrain = false;
  private readonly writeBufferBytes: number;
  private pingTimer?: Timer;
  private pongTimer?: Timer;
  private pingNonce = 0;
  private _closeError?: MeshwireError;
  private _closeReason?: MuxCloseReason;
  private readonly closedPromise: Promise<MeshwireError>;
  private resolveClosed!: (err: MeshwireError) => void;

  constructor(duplex: Duplex, init: MuxInit) {
    super();
    this.drops = new DropCounter('mux', init.drops);
    const channels = resolveChannels(init.channels);
    for (const c of channels) this.channels.set(c.id, c);
    const maxFragmentBytes = init.maxFragmentBytes ?? DEFAULT_MAX_FRAGMENT_BYTES;
    if (
      !Number.isInteger(maxFragmentBytes) ||
      maxFragmentBytes <= 0 ||
      maxFragmentBytes > MAX_FRAME_PAYLOAD_BYTES
    ) {
      throw new InvalidArgumentError(
        `maxFragmentBytes must be an integer in 1..${MAX_FRAME_PAYLOAD_BYTES}, got ${maxFragmentBytes}`
      );
    }
    this.duplex = duplex;
    this.clock = init.clock ?? systemClock;
    this.scheduler = new SendScheduler(channels, maxFragmentBytes);
    this.reassembler = new Reassembler(channels);
    this.decoder = new FrameDecoder({ maxFramePayloadBytes: MAX_FRAME_PAYLOAD_BYTES });
    this.maxSendWaiters = init.maxSendWaiters ?? DEFAULT_MAX_SEND_WAITERS;
    this.pingIntervalMs = init.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS;
    this.pongTimeoutMs = init.pongTimeoutMs ?? DEFAULT_PONG_TIMEOUT_MS;
    this.writeBufferBytes =
      init.writeBufferBytes ??
      Math.min(duplex.writableHighWaterMark, MAX_DEFAULT_WRITE_BUFFER_BYTES);
    this.closedPromise = new Promise(resolve => (this.resolveClosed = resolve));

    duplex.on('data', this.onData);
    duplex.on('drain', this.onDrain);
    duplex.on('end', this.onEnd);
    duplex.on('close', this.onEnd);
    duplex.on('error', this.onError);
    if (this.pingIntervalMs > 0) this.schedulePing();
    // A transport that closed before we were handed it (a connection whose peer closed in
    // the same turn as the handshake) sends no 'close' again: close now, not at a timeout.
    if (duplex.destroyed) queueMicrotask(this.onEnd);
  }

  /** True once the mux has closed, for whatever reason. */
  get closed(): boolean {
    return this._closeError !== undefined;
  }

  get closeError(): MeshwireError | undefined {
    return this._closeError;
  }

  get closeReason(): MuxCloseReason | undefined {
    return this._closeReason;
  }

  /** Resolves with the error the mux closed with. */
  whenClosed(): Promise<MeshwireError> {
    return this.closedPromise;
  }

  /** Messages and bytes queued on a channel, not yet fully written. */
  queueDepth(channelId: number): { messages: number; bytes: number } {
    return this.scheduler.queueDepth(channelId);
  }

  /** The largest message a channel takes; throws InvalidArgumentError for an undeclared one. */
  maxMessageBytes(channelId: number): number {
    const ch = this.channels.get(channelId);
    if (!ch)
      throw new InvalidArgumentError(`channel ${channelId} is not declared on this connection`);
    return ch.maxMessageBytes;
  }

  /** True when a message of `len` bytes would be queued at once by trySend. */
  hasRoom(channelId: number, len: number): boolean {
    if (this._closeError) return false;
    const waiting = this.waiters.get(channelId);
    if (waiting && waiting.length > 0) return false;
    return this.scheduler.hasRoom(channelId, len);
  }

  /**
   * Queues a message, waiting for room in the channel's queue (the mux keeps a reference
   * to `data` until it is written: do not modify it after sending). Resolves once queued
   * (use `onWritten` to learn when it was handed to the connection). Rejects with
   * InvalidArgumentError (unknown channel, message above the channel's max),
   * ResourceExhaustedError (too many senders already waiting), CancelledError (signal)
   * or ConnectionClosedError.
   */
  send(channelId: number, data: Buffer, opts: SendOptions = {}): Promise<void> {
    const err = this.checkSend(channelId, data);
    if (err) return Promise.reject(err);
    if (opts.signal?.aborted)
      return Promise.reject(new CancelledError('send aborted before queueing'));
    const msg: QueuedMessage = { data, onWritten: opts.onWritten };
    let list = this.waiters.get(channelId);
    // Senders already waiting go first: no overtaking, so each channel stays FIFO.
    if ((!list || list.length === 0) && this.admit(channelId, msg)) return Promise.resolve();
    if (!list) this.waiters.set(channelId, (list = []));
    if (list.length >= this.maxSendWaiters) {
      this.drops.add('queue_full');
      return Promise.reject(
        new ResourceExhaustedError(
          `channel ${channelId}: send queue full and ${list.length} senders already waiting`
        )
      );
    }
    const waiters = list;
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { msg, resolve, reject };
      const signal = opts.signal;
      if (signal) {
        const onAbort = () => {
          const i = waiters.indexOf(w);
          if (i >= 0) waiters.splice(i, 1);
          reject(new CancelledError(`send on channel ${channelId} aborted while waiting for room`));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        w.cleanup = () => signal.removeEventListener('abort', onAbort);
      }
      waiters.push(w);
    });
  }

  /**
   * Queues a message if there is room now; returns false (and counts a queue_full drop)
   * when the queue is full or the mux closed. Throws InvalidArgumentError for an unknown
   * channel or an oversized message, which are the caller's bugs.
   */
  trySend(
    channelId: number,
    data: Buffer,
    opts: {
      onWritten?: () => void;
      /** Nobody waits on it (a CANCEL): written with the turn's batch, never on its own. */
      batch?: boolean;
    } = {}
  ): boolean {
    const err = this.checkSend(channelId, data);
    if (err) {
      if (err instanceof ConnectionClosedError) return false;
      throw err;
    }
    const waiting = this.waiters.get(channelId);
    if (
      (waiting && waiting.length > 0) ||
      !this.admit(channelId, { data, onWritten: opts.onWritten }, opts.batch)
    ) {
      this.drops.add('queue_full');
      return false;
    }
    if (LATENCY_TRACE) traceMark(Stage.MUX_QUEUED);
    return true;
  }

  /**
   * Resolves once every message queued so far (and every waiting sender) has been handed
   * to the connection: for a drain before `close()` on shutdown. Rejects with
   * ConnectionClosedError if the mux closes first; bound it with your own timeout.
   */
  flushed(): Promise<void> {
    if (this._closeError) {
      return Promise.reject(new ConnectionClosedError(`cannot flush: ${this._closeError.message}`));
    }
    if (this.idle()) return Promise.resolve();
    return new Promise((resolve, reject) => this.flushWaiters.push({ resolve, reject }));
  }

  private idle(): boolean {
    if (this.control.length > 0 || this.scheduler.hasPending()) return false;
    for (const list of this.waiters.values()) if (list.length > 0) return false;
    return true;
  }

  /**
   * Closes the connection: a CLOSE frame with the reason goes out ahead of any queued
   * data, queued messages are dropped (counted), waiting senders are rejected, and
   * 'close' is emitted with a ConnectionClosedError. Idempotent.
   */
  close(reason: string | Error = 'closed by application'): void {
    const text = typeof reason === 'string' ? reason : reason.message;
    this.shutdown(
      new ConnectionClosedError(`connection closed locally: ${text}`),
      'local',
      text,
      false
    );
  }

  private checkSend(channelId: number, data: Buffer): MeshwireError | undefined {
    const ch = this.channels.get(channelId);
    if (!ch)
      return new InvalidArgumentError(`channel ${channelId} is not declared on this connection`);
    if (data.length > ch.maxMessageBytes) {
      return new InvalidArgumentError(
        `message of ${data.length} bytes is above channel ${channelId}'s limit of ${ch.maxMessageBytes}`
      );
    }
    if (this._closeError) {
      return new ConnectionClosedError(`cannot send: ${this._closeError.message}`, {
        cause: this._closeError,
      });
    }
    return undefined;
  }

  private admit(channelId: number, msg: QueuedMessage, batch = false): boolean {
    if (!this.scheduler.hasRoom(channelId, msg.data.length)) return false;
    this.scheduler.enqueue(channelId, msg);
    this.schedulePump(!batch && this.lastPumpMessages <= 1);
    return true;
  }

  /** Moves waiting senders into the queue as room frees up, first come first served. */
  private admitWaiters(channelId: number): void {
    const list = this.waiters.get(channelId);
    if (!list) return;
    while (list.length > 0 && this.scheduler.hasRoom(channelId, list[0].msg.data.length)) {
      const w = list.shift() as Waiter;
      w.cleanup?.();
      this.scheduler.enqueue(channelId, w.msg);
      w.resolve();
    }
  }

  /**
   * `lone`: a message on a connection whose last pump carried at most one. It is written
   * in a microtask, still in the turn it was sent in, instead of waiting a loop iteration
   * for company that is not coming; if more messages are queued before that microtask
   * runs, it defers to setImmediate like any batch. Otherwise (under load, control frames,
   * re-pumps) setImmediate: sends made in the same turn of the event loop are written in
   * one batch (one write for 64 small responses, not 64), behind the control frames.
   */
  private schedulePump(lone = false): void {
    if (this.pumpScheduled) {
      if (this.lonePump) this.lonePump++;
      return;
    }
    if (this.needDrain || this._closeError) return;
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
    if (this._closeError || this.needDrain) return;
    const d = this.duplex;
    let batch: Buffer[] = [];
    let batchBytes = 0;
    let written: (() => void)[] = [];
    const touched = new Set<number>();
    let messages = 0;
    const flush = (): void => {
      if (batch.length === 0) return;
      this.stats.bytesOut += batchBytes;
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
          this.stats.messagesOut++;
          messages++;
          if (f.msg.onWritten) written.push(f.msg.onWritten);
          touched.add(f.channelId);
        }
      }
      this.stats.framesOut++;
      if (batchBytes >= MAX_WRITE_BATCH_BYTES) {
        flush();
        if (this._closeError) return;
      }
    }
    flush();
    this.lastPumpMessages = messages;
    for (const id of touched) this.admitWaiters(id);
    if (!this.needDrain && (this.control.length > 0 || this.scheduler.hasPending())) {
      this.schedulePump();
    }
    if (this.flushWaiters.length > 0 && this.idle()) {
      const ws = this.flushWaiters;
      this.flushWaiters = [];
      for (const w of ws) w.resolve();
    }
  };

  /** A write completed: if the mux was waiting for room in the duplex, there may be some. */
  private readonly onWriteDone = (): void => {
    if (this.needDrain && this.duplex.writableLength < this.writeBufferBytes) {
      this.needDrain = false;
      this.schedulePump();
    }
  };

  private readonly onDrain = (): void => {
    this.needDrain = false;
    this.schedulePump();
  };

  private sendControl(frame: Frame): void {
    this.control.push(encodeFrame(frame));
    this.schedulePump();
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this._closeError) return;
    if (LATENCY_TRACE) tracePending(Stage.MUX_IN);
    this.stats.bytesIn += chunk.length;
    let frames: Frame[];
    try {
      frames = this.decoder.write(chunk);
    } catch (err) {
      this.protocolViolation(err as Error);
      return;
    }
    for (const f of frames) {
      if (this._closeError) return;
      this.stats.framesIn++;
      switch (f.type) {
        case FrameType.DATA: {
          let msg: Buffer | undefined;
          try {
            msg = this.reassembler.push(f.channelId, f.payload, f.eof);
          } catch (err) {
            this.protocolViolation(err as Error);
            return;
          }
          if (msg) {
            this.stats.messagesIn++;
            try {
              this.emit('message', f.channelId, msg);
            } catch {
              // A listener's bug must not tear down the reader of every other channel.
              this.drops.add('listener_error');
            }
          }
          break;
        }
        case FrameType.PING:
          this.sendControl({ type: FrameType.PONG, nonce: f.nonce });
          break;
        case FrameType.PONG:
          if (this.pongTimer && f.nonce === this.pingNonce) {
            this.stats.pongsReceived++;
            this.pongTimer.cancel();
            this.pongTimer = undefined;
            this.schedulePing();
          }
          break;
        case FrameType.CLOSE:
          this.shutdown(
            new ConnectionClosedError(`connection closed by peer: ${f.reason}`),
            'peer_closed',
            undefined,
            false
          );
          return;
      }
    }
  };

  private protocolViolation(err: Error): void {
    this.drops.add('protocol_error');
    const perr =
      err instanceof ProtocolError ? err : new ProtocolError(err.message, { cause: err });
    this.shutdown(perr, 'protocol_error', `protocol error: ${perr.message}`, false);
  }

  private readonly onEnd = (): void => {
    this.shutdown(
      new ConnectionClosedError('connection closed by transport'),
      'transport_closed',
      undefined,
      true
    );
  };

  private readonly onError = (err: Error): void => {
    this.shutdown(
      new ConnectionClosedError(`transport error: ${err.message}`, { cause: err }),
      'transport_error',
      undefined,
      true
    );
  };

  /**
   * Keepalive (MConnection-style ping/pong, refined): a PING goes out `pingIntervalMs` after the
   * last exchange; the connection closes only if nothing at all (no pong, no frame) has
   * come from the peer within `pongTimeoutMs` of the ping. Any frame proves the peer
   * alive: a ping queued behind megabytes inside a slow transport must not kill a
   * connection whose responses keep arriving.
   */
  private schedulePing(): void {
    this.pingTimer?.cancel();
    this.pingTimer = this.clock.setTimer(this.pingIntervalMs, () => {
      this.pingTimer = undefined;
      if (this._closeError) return;
      this.pingNonce = (this.pingNonce + 1) >>> 0;
      this.stats.pingsSent++;
      this.sendControl({ type: FrameType.PING, nonce: this.pingNonce });
      const framesAtPing = this.stats.framesIn;
      this.pongTimer = this.clock.setTimer(this.pongTimeoutMs, () => {
        this.pongTimer = undefined;
        if (this.stats.framesIn > framesAtPing) {
          this.schedulePing(); // heard from the peer meanwhile: alive
          return;
        }
        this.shutdown(
          new ConnectionClosedError(
            `nothing from the peer within ${this.pongTimeoutMs} ms of a ping: peer unresponsive`
          ),
          'pong_timeout',
          undefined,
          true
        );
      });
    });
  }

  /**
   * The one way out. `closeFrameReason` set: tell the peer why before ending the stream.
   * `destroy`: the stream is gone or the peer is unresponsive; do not wait for a flush.
   */
  private shutdown(
    err: MeshwireError,
    reason: MuxCloseReason,
    closeFrameReason: string | undefined,
    destroy: boolean
  ): void {
    if (this._closeError) return;
    this._closeError = err;
    this._closeReason = reason;
    this.pingTimer?.cancel();
    this.pongTimer?.cancel();
    this.pingTimer = this.pongTimer = undefined;

    const unsent = this.scheduler.drainAll();
    if (unsent.length > 0) this.drops.add('unsent_on_close', unsent.length);
    for (const list of this.waiters.values()) {
      for (const w of list) {
        w.cleanup?.();
        this.drops.add('unsent_on_close');
        w.reject(new ConnectionClosedError(`send failed: ${err.message}`, { cause: err }));
      }
    }
    this.waiters.clear();
    this.control.length = 0;
    for (const w of this.flushWaiters) {
      w.reject(new ConnectionClosedError(`flush failed: ${err.message}`, { cause: err }));
    }
    this.flushWaiters = [];

    const d = this.duplex;
    d.off('data', this.onData);
    d.off('drain', this.onDrain);
    d.off('end', this.onEnd);
    d.off('close', this.onEnd);
    // Keep an error listener: a late socket error must not become an uncaught exception.
    d.off('error', this.onError);
    d.on('error', () => {});
    if (destroy || d.destroyed) {
      d.destroy();
    } else {
      if (closeFrameReason !== undefined && d.writable) {
        d.write(encodeFrame({ type: FrameType.CLOSE, reason: closeFrameReason }));
      } else if (reason === 'local' && d.writable) {
        d.write(encodeFrame({ type: FrameType.CLOSE, reason: 'closed by peer application' }));
      }
      d.end();
      const t = this.clock.setTimer(DESTROY_AFTER_CLOSE_MS, () => d.destroy());
      d.once('close', () => t.cancel());
    }
    this.resolveClosed(err);
    this.emit('close', err, reason);
  }
}
