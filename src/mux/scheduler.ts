/**
 * Pure send scheduler of the mux (no I/O, no time): per-channel bounded queues and the
 * choice of which channel's fragment goes next.
 *
 * MConnection picks the channel with the least `recentlySent / priority`, where
 * recentlySent is an exponential moving average of bytes. Its users found two faults:
 * decay by wall-clock ticks lets a channel of large messages fall behind forever
 * (cometbft#2954), and a full low-priority queue blocked everyone (cometbft#2128,
 * one shared send path). Here each channel has its own queue (a full one blocks only
 * its own senders), and "recently sent" is a virtual finish time (stride/start-time
 * fair queueing): each fragment of n bytes advances its channel's `pass` by
 * (n + overhead) / priority; the lowest pass goes next; a channel that was idle
 * restarts at the current virtual time, so it neither hoards credit nor carries debt.
 * Every busy channel therefore gets bytes in proportion to its priority, whatever its
 * message size: large messages are never starved, small urgent ones never wait long.
 * Urgent channels are a strict tier above the rest.
 */
import type { ResolvedChannel } from './channel';
import { SCHEDULER_FRAME_OVERHEAD_BYTES } from './constants';

/** A message waiting in (or being cut from) a channel's queue. */
export interface QueuedMessage {
  data: Buffer;
  /** Called once the message's last fragment has been handed to the connection. */
  onWritten?: () => void;
}

/** The next piece to write: bytes [start, end) of msg.data on channelId. */
export interface Fragment {
  channelId: number;
  msg: QueuedMessage;
  start: number;
  end: number;
  eof: boolean;
}

class ChannelQueue {
  readonly desc: ResolvedChannel;
  private items: QueuedMessage[] = [];
  private head = 0;
  /** Bytes already cut from the head message. */
  offset = 0;
  bytes = 0;
  pass = 0;

  constructor(desc: ResolvedChannel) {
    this.desc = desc;
  }

  get length(): number {
    return this.items.length - this.head;
  }

  peek(): QueuedMessage {
    return this.items[this.head];
  }

  push(m: QueuedMessage): void {
    this.items.push(m);
    this.bytes += m.data.length;
  }

  shift(): QueuedMessage {
    const m = this.items[this.head];
    this.items[this.head] = undefined as unknown as QueuedMessage;
    this.head++;
    if (this.head > 64 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    this.bytes -= m.data.length;
    this.offset = 0;
    return m;
  }

  drain(): QueuedMessage[] {
    const out = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    this.bytes = 0;
    this.offset = 0;
    return out;
  }
}

export class SendScheduler {
  private readonly queues = new Map<number, ChannelQueue>();
  private readonly urgent: ChannelQueue[] = [];
  private readonly normal: ChannelQueue[] = [];
  private readonly maxFragmentBytes: number;
  private vtime = 0;
  private pendingMessages = 0;

  constructor(channels: readonly ResolvedChannel[], maxFragmentBytes: number) {
    this.maxFragmentBytes = maxFragmentBytes;
    for (const c of channels) {
      const q = new ChannelQueue(c);
      this.queues.set(c.id, q);
      (c.urgent ? this.urgent : this.normal).push(q);
    }
  }

  /** True when the channel's queue has room for a message of `len` bytes. */
  hasRoom(channelId: number, len: number): boolean {
    const q = this.queues.get(channelId);
    if (!q) return false;
    if (q.length === 0) return true;
    return q.length < q.desc.sendQueueCapacity && q.bytes + len <= q.desc.sendQueueBytes;
  }

  /** Queues a message; the caller checks hasRoom first. */
  enqueue(channelId: number, msg: QueuedMessage): void {
    const q = this.queues.get(channelId);
    if (!q) throw new RangeError(`unknown channel ${channelId}`);
    if (q.length === 0) q.pass = Math.max(q.pass, this.vtime);
    q.push(msg);
    this.pendingMessages++;
  }

  hasPending(): boolean {
    return this.pendingMessages > 0;
  }

  queueDepth(channelId: number): { messages: number; bytes: number } {
    const q = this.queues.get(channelId);
    return q ? { messages: q.length, bytes: q.bytes } : { messages: 0, bytes: 0 };
  }

  /** Cuts the next fragment, or returns undefined when every queue is empty. */
  nextFragment(): Fragment | undefined {
    if (this.pendingMessages === 0) return undefined;
    const q = this.pick(this.urgent) ?? this.pick(this.normal);
    if (!q) return undefined;
    const msg = q.peek();
    const start = q.offset;
    const end = Math.min(msg.data.length, start + this.maxFragmentBytes);
    const eof = end === msg.data.length;
    this.vtime = q.pass;
    q.pass += (end - start + SCHEDULER_FRAME_OVERHEAD_BYTES) / q.desc.priority;
    if (eof) {
      q.shift();
      this.pendingMessages--;
    } else {
      q.offset = end;
    }
    return { channelId: q.desc.id, msg, start, end, eof };
  }

  /** Empties every queue (on close), returning what was never fully written. */
  drainAll(): QueuedMessage[] {
    const out: QueuedMessage[] = [];
    for (const q of this.queues.values()) out.push(...q.drain());
    this.pendingMessages = 0;
    return out;
  }

  private pick(tier: ChannelQueue[]): ChannelQueue | undefined {
    let best: ChannelQueue | undefined;
    for (const q of tier) {
      if (q.length === 0) continue;
      if (
        !best ||
        q.pass < best.pass ||
        (q.pass === best.pass && q.desc.priority > best.desc.priority)
      ) {
        best = q;
      }
    }
    return best;
  }
}
