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
import type { Clock, MeshwireError } from '../common';
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
import type { ResolvedChannel } from './channel';
import { resolveChannels } from './channel';
import {
  DEFAULT_MAX_FRAGMENT_BYTES,
  DEFAULT_MAX_SEND_WAITERS,
  DEFAULT_PING_INTERVAL_MS,
  DEFAULT_PONG_TIMEOUT_MS,
  DESTROY_AFTER_CLOSE_MS,
  MAX_FRAME_PAYLOAD_BYTES,
  MAX_DEFAULT_WRITE_BUFFER_BYTES,
} from './constants';
import { FrameDecoder } from './decode';
import { encodeFrame } from './encode';
import type { Frame } from './frame-types';
import { FrameType } from './frame-types';
import { Keepalive } from './keepalive';
import type {
  MuxCloseReason,
  MuxDropReason,
  MuxEvents,
  MuxInit,
  MuxStats,
  SendOptions,
} from './mux-types';
import { MuxWriter } from './mux-writer';
import { Reassembler } from './reassembler';
import type { QueuedMessage } from './scheduler';
import { SendScheduler } from './scheduler';

export type {
  MuxCloseReason,
  MuxDropReason,
  MuxEvents,
  MuxInit,
  MuxStats,
  SendOptions,
} from './mux-types';

interface Waiter {
  msg: QueuedMessage;
  resolve: () => void;
  reject: (err: Error) => void;
  cleanup?: () => void;
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
  private readonly keepalive: Keepalive;
  private readonly writer: MuxWriter;
  private flushWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
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
    this.keepalive = new Keepalive(
      this.clock,
      init.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS,
      init.pongTimeoutMs ?? DEFAULT_PONG_TIMEOUT_MS,
      {
        isClosed: () => this._closeError !== undefined,
        sendPing: nonce => {
          this.stats.pingsSent++;
          this.writer.sendControl({ type: FrameType.PING, nonce });
        },
        framesIn: () => this.stats.framesIn,
        onUnresponsive: pongTimeoutMs =>
          this.shutdown(
            new ConnectionClosedError(
              `nothing from the peer within ${pongTimeoutMs} ms of a ping: peer unresponsive`
            ),
            'pong_timeout',
            undefined,
            true
          ),
      }
    );
    const writeBufferBytes =
      init.writeBufferBytes ??
      Math.min(duplex.writableHighWaterMark, MAX_DEFAULT_WRITE_BUFFER_BYTES);
    this.writer = new MuxWriter(duplex, this.scheduler, writeBufferBytes, {
      stats: this.stats,
      isClosed: () => this._closeError !== undefined,
      admitWaiters: id => this.admitWaiters(id),
      afterPump: () => {
        if (this.flushWaiters.length > 0 && this.idle()) {
          const ws = this.flushWaiters;
          this.flushWaiters = [];
          for (const w of ws) w.resolve();
        }
      },
    });
    this.closedPromise = new Promise(resolve => (this.resolveClosed = resolve));

    duplex.on('data', this.onData);
    duplex.on('drain', this.writer.onDrain);
    duplex.on('end', this.onEnd);
    duplex.on('close', this.onEnd);
    duplex.on('error', this.onError);
    this.keepalive.start();
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
    if (!this.writer.idle()) return false;
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
    this.writer.onQueued(batch);
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
          this.writer.sendControl({ type: FrameType.PONG, nonce: f.nonce });
          break;
        case FrameType.PONG:
          if (this.keepalive.onPong(f.nonce)) this.stats.pongsReceived++;
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
    this.keepalive.stop();

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
    this.writer.control.length = 0;
    for (const w of this.flushWaiters) {
      w.reject(new ConnectionClosedError(`flush failed: ${err.message}`, { cause: err }));
    }
    this.flushWaiters = [];

    const d = this.duplex;
    d.off('data', this.onData);
    d.off('drain', this.writer.onDrain);
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
