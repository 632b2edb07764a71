/**
 * The pure logic of one RequestMany (scatter-gather): counts replies, knows when the
 * gather is over (max_replies, timeout, stall, every delivery answered, no responders)
 * and says so once. Time comes from the injected clock; replies and delivery counts are
 * handed in by the node (node.ts requestMany), which owns the I/O.
 */
import type { Clock, Timer } from '../common';
import type { ReplyResult } from './reply-table';

/** Why a gather ended (the `reason` of meshwire.request_many.ended). */
export type GatherEndReason =
  /** max_replies replies arrived (or the hard cap, when max_replies is 0). */
  | 'max_replies'
  /** timeout_ms passed. */
  | 'timeout'
  /** stall_ms passed after the latest reply with no new one. */
  | 'stall'
  /** As many replies as deliveries, once every node reported its delivery count. */
  | 'all_answered'
  /** The client cancelled (or its gRPC deadline passed). */
  | 'cancelled'
  /** Nobody got the request: ended at once with UNAVAILABLE. */
  | 'no_responders'
  /** The client read too slowly: its reply buffer filled (RESOURCE_EXHAUSTED). */
  | 'slow_client'
  /** The node stopped mid-gather. */
  | 'node_stopped';

/** Every end reason, for metrics (each exported at zero before it first happens). */
export const GATHER_END_REASONS: readonly GatherEndReason[] = [
  'max_replies',
  'timeout',
  'stall',
  'all_answered',
  'cancelled',
  'no_responders',
  'slow_client',
  'node_stopped',
];

/** Replies one RequestMany takes at most (max_replies 0 means this many). */
export const MAX_GATHER_REPLIES = 10_000;
/** The longest timeout_ms and stall_ms a RequestMany may ask for. */
export const MAX_GATHER_MS = 300_000;

export interface GatherLimits {
  /** Ends the gather (OK) this long after it started. */
  timeoutMs: number;
  /** Ends the gather at this many replies (1..MAX_GATHER_REPLIES). */
  maxReplies: number;
  /** Ends the gather this long after the latest reply; 0: no stall end. */
  stallMs: number;
}

export interface GatherSink {
  /** A reply to pass on (in arrival order). */
  reply(r: ReplyResult): void;
  /** The gather is over; called once. */
  end(reason: GatherEndReason): void;
}

export class Gather {
  /** Replies taken so far. */
  replies = 0;
  /** Deliveries of the request, once every node reported its count. */
  private deliveries: number | undefined;
  private endReason: GatherEndReason | undefined;
  private timeoutTimer: Timer | undefined;
  private stallTimer: Timer | undefined;
  private lastReplyAt = 0;

  constructor(
    private readonly clock: Clock,
    private readonly limits: GatherLimits,
    private readonly sink: GatherSink
  ) {
    this.timeoutTimer = clock.setTimer(limits.timeoutMs, () => this.end('timeout'));
  }

  /** Why the gather ended; undefined while it runs. */
  get ended(): GatherEndReason | undefined {
    return this.endReason;
  }

  /** A reply arrived. Ignored once ended (the node closes the token at the end). */
  reply(r: ReplyResult): void {
    if (this.endReason) return;
    this.replies++;
    this.sink.reply(r);
    if (this.endReason) return; // the sink ended it (slow client)
    if (this.replies >= this.limits.maxReplies) {
      this.end('max_replies');
      return;
    }
    if (this.deliveries !== undefined && this.replies >= this.deliveries) {
      this.end('all_answered');
      return;
    }
    if (this.limits.stallMs > 0) {
      this.lastReplyAt = this.clock.now();
      // One timer at a time, re-armed when it fires early: not a timer per reply.
      this.stallTimer ??= this.clock.setTimer(this.limits.stallMs, () => this.checkStall());
    }
  }

  private checkStall(): void {
    this.stallTimer = undefined;
    if (this.endReason) return;
    const quietMs = this.clock.now() - this.lastReplyAt;
    if (quietMs >= this.limits.stallMs) this.end('stall');
    else {
      this.stallTimer = this.clock.setTimer(this.limits.stallMs - quietMs, () => this.checkStall());
    }
  }

  /**
   * Every node reported how many of its subscribers took the request (`total`). 0 with
   * no reply yet ends the gather as no_responders.
   */
  delivered(total: number): void {
    if (this.endReason) return;
    this.deliveries = total;
    if (total === 0 && this.replies === 0) this.end('no_responders');
    else if (this.replies >= total) this.end('all_answered');
  }

  /** Ends the gather from outside (cancel, slow client, node stop); once. */
  end(reason: GatherEndReason): void {
    if (this.endReason) return;
    this.endReason = reason;
    this.timeoutTimer?.cancel();
    this.stallTimer?.cancel();
    this.timeoutTimer = this.stallTimer = undefined;
    this.sink.end(reason);
  }
}
