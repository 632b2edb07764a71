/**
 * RequestMany's bounds, checks and figures: what node.ts requestMany validates before a
 * gather starts, the node-wide cap on gathers at once, and the counters /metrics exports
 * (src/api/node-metrics.ts).
 */
import { InvalidArgumentError, ResourceExhaustedError } from '../common';
import type { GatherEndReason, GatherLimits } from './gather';
import { GATHER_END_REASONS, MAX_GATHER_MS, MAX_GATHER_REPLIES } from './gather';
import type { RequestManyOptions } from './types';

/** RequestMany calls one node runs at once (every client together); more: RESOURCE_EXHAUSTED. */
export const MAX_CONCURRENT_GATHERS = 10_000;

/** A running gather, for its caller. */
export interface GatherHandle {
  /**
   * Ends the gather, as cancelled unless another reason is given (idempotent; nothing
   * happens once it ended).
   */
  cancel(reason?: 'cancelled' | 'slow_client'): void;
}

/** RequestMany figures of one node (read by /metrics). */
export class GatherStats {
  /** RequestMany calls started (accepted: valid and under the cap). */
  calls = 0;
  /** Replies passed to RequestMany callers. */
  replies = 0;
  /** Calls refused at MAX_CONCURRENT_GATHERS. */
  refused = 0;
  /** Gathers running now. */
  active = 0;
  /** Ended gathers by reason (every reason present, from zero). */
  readonly ended = new Map<GatherEndReason, number>(GATHER_END_REASONS.map(r => [r, 0]));

  /** Counts a new gather, or throws ResourceExhaustedError at the cap (counted). */
  admit(nodeId: string): void {
    if (this.active >= MAX_CONCURRENT_GATHERS) {
      this.refused++;
      throw new ResourceExhaustedError(
        `node ${nodeId} already runs ${this.active} RequestMany calls (at most ${MAX_CONCURRENT_GATHERS}); wait for some to end or use another node`
      );
    }
    this.active++;
    this.calls++;
  }

  end(reason: GatherEndReason): void {
    this.active--;
    this.ended.set(reason, (this.ended.get(reason) ?? 0) + 1);
  }
}

function checkRange(name: string, value: number, max: number, zeroMeans: string): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new InvalidArgumentError(
      `request_many: ${name} ${value} is out of range: give 0 (${zeroMeans}) to ${max}`
    );
  }
}

/**
 * The limits of a gather from its options (0 or unset: the defaults). Throws
 * InvalidArgumentError naming the field and its range.
 */
export function gatherLimits(opts: RequestManyOptions, defaultTimeoutMs: number): GatherLimits {
  const timeoutMs = opts.timeoutMs ?? 0;
  const maxReplies = opts.maxReplies ?? 0;
  const stallMs = opts.stallMs ?? 0;
  checkRange('timeout_ms', timeoutMs, MAX_GATHER_MS, "the node's request timeout");
  checkRange('max_replies', maxReplies, MAX_GATHER_REPLIES, 'as many as arrive');
  checkRange('stall_ms', stallMs, MAX_GATHER_MS, 'no stall end');
  return {
    timeoutMs: timeoutMs > 0 ? timeoutMs : Math.min(defaultTimeoutMs, MAX_GATHER_MS),
    maxReplies: maxReplies > 0 ? maxReplies : MAX_GATHER_REPLIES,
    stallMs,
  };
}
