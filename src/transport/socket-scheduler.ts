/**
 * When the socket ticks its connections' engines, after the flush policy in
 * src/common/flush-policy.ts: a lone write is sent in the same turn, further writes and a
 * batch driver's received datagrams at the end of the turn (microtask), input from
 * per-datagram drivers and re-ticks in the next turn (setImmediate); an engine's own
 * deadlines on a timer from the injected clock.
 */
import type { Clock, Timer } from '../common';
import type { DatagramSocket, RemoteInfo } from './drivers/datagram-socket';
import type { RudpEngine } from './engine/engine';
import type { RudpConnection } from './rudp-connection';

/** One connection of the socket. */
export interface Entry {
  engine: RudpEngine;
  remote: RemoteInfo;
  conn: RudpConnection | null;
  timer: Timer | null;
  timerAt: number;
  initialKey: string | null;
  remoteCidKey: string | null;
  onEstablished: (() => void) | null;
  onFailed: ((err: Error) => void) | null;
  immediateTurns: number;
  /** The engine has bytes (or the end) for the reader; delivered in service(). */
  readable: boolean;
  /** A flushSoon() microtask is pending. */
  flushQueued: boolean;
  /** A write was already sent at once in this run of JavaScript (flushSoon). */
  sentAtOnce: boolean;
}

/** Consecutive next-turn ticks of one connection before a 1 ms timer is forced. */
const MAX_IMMEDIATE_TURNS = 1000;

export class SocketScheduler {
  private readonly dirty = new Set<Entry>();
  private immediate: NodeJS.Immediate | null = null;
  /** Connections with received datagrams, ticked in a microtask (batch driver only). */
  private readonly received = new Set<Entry>();
  private receivedQueued = false;
  private closed = false;

  /** `onClosed`: an engine reached 'closed' in a tick; the socket forgets it. */
  constructor(
    private readonly sock: DatagramSocket,
    private readonly clock: Clock,
    private readonly onClosed: (e: Entry) => void
  ) {}

  /** Schedules a tick of `e` in the next turn (setImmediate: batching for load, flush policy). */
  kick(e: Entry): void {
    this.dirty.add(e);
    if (!this.immediate) this.immediate = setImmediate(() => this.runDirty());
  }

  /**
   * A datagram arrived for `e`. On the batch driver every datagram of one recvmmsg batch
   * is handed over in one callback, so a microtask still ticks the connection once per
   * batch, and a lone packet is read at once instead of a loop phase later (end of turn).
   * Other drivers deliver one datagram per callback: the next turn batches them (kick).
   */
  kickReceived(e: Entry): void {
    if (this.sock.kind !== 'batch') {
      this.kick(e);
      return;
    }
    this.received.add(e);
    if (this.receivedQueued) return;
    this.receivedQueued = true;
    queueMicrotask(this.runReceived);
  }

  private readonly runReceived = (): void => {
    this.receivedQueued = false;
    if (this.closed) return;
    const list = [...this.received];
    this.received.clear();
    for (const e of list) {
      // already queued for the end of the turn: that tick reads it
      if (!this.dirty.has(e)) this.service(e);
    }
  };

  /**
   * Application writes (flush policy, src/common/flush-policy.ts). Same turn: the first
   * write of a run of JavaScript on an established connection is packetized and handed to
   * the driver inside write(), so a lone request does not wait behind the microtasks
   * queued before it. End of turn: further writes of the same run share one tick in a
   * microtask.
   */
  flushSoon(e: Entry): void {
    if (e.flushQueued || this.dirty.has(e)) return;
    if (!e.sentAtOnce && !this.closed && e.engine.state === 'established') {
      e.sentAtOnce = true;
      queueMicrotask(() => (e.sentAtOnce = false));
      this.tickAndArm(e);
      return;
    }
    e.flushQueued = true;
    queueMicrotask(() => {
      e.flushQueued = false;
      // already ticked by an immediate meanwhile, or the socket closed: nothing to do
      if (!this.dirty.has(e) && !this.closed) this.service(e);
    });
  }

  private runDirty(): void {
    this.immediate = null;
    const list = [...this.dirty];
    this.dirty.clear();
    for (const e of list) this.service(e);
  }

  /** Hands the reader what arrived, ticks the engine and re-arms its timer. */
  service(e: Entry): void {
    if (e.readable) {
      e.readable = false;
      e.conn?.onReadable();
    }
    this.tickAndArm(e);
  }

  /** Ticks an engine and re-arms its timer at nextDeadline(). */
  tickAndArm(e: Entry): void {
    const now = this.clock.now();
    e.engine.tick(now);
    if (e.engine.state === 'closed') {
      this.onClosed(e);
      return;
    }
    const at = e.engine.nextDeadline();
    if (at === Infinity) return;
    if (at <= now) {
      // Work to do now: next turn. A guard against an engine that never makes progress:
      // after many immediate turns in a row, fall back to a 1 ms timer (bounded CPU).
      if (++e.immediateTurns < MAX_IMMEDIATE_TURNS) {
        this.kick(e);
        return;
      }
      e.immediateTurns = 0;
    } else {
      e.immediateTurns = 0;
    }
    // Sub-millisecond deadlines (pacing) wait for a 1 ms timer rather than spinning on
    // setImmediate: the pacer's burst allowance (PACING_BURST_MS) covers the wait, and the
    // CPU goes to the receive path instead.
    if (e.timer && e.timerAt <= at) return;
    e.timer?.cancel();
    e.timerAt = at;
    e.timer = this.clock.setTimer(Math.max(1, at - now), () => {
      e.timer = null;
      e.timerAt = Infinity;
      this.service(e);
    });
  }

  /** `e` is gone: no more ticks for it. */
  forget(e: Entry): void {
    e.timer?.cancel();
    e.timer = null;
    this.dirty.delete(e);
    this.received.delete(e);
  }

  /** The socket closed: nothing more runs. */
  close(): void {
    this.closed = true;
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = null;
  }
}
