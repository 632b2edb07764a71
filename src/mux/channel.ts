/** Channel descriptors: what a mux user declares, and their validation. */
import { InvalidArgumentError } from '../common';
import { DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_SEND_QUEUE_CAPACITY } from './constants';

/** One logical channel over a connection (MConnection's ChannelDescriptor). */
export interface ChannelDescriptor {
  /** 0..65535, unique per mux; both sides must declare the same ids. */
  id: number;
  /**
   * Share of the link when several channels are busy: a channel gets bytes in proportion
   * to its priority. Positive.
   * @default 1
   */
  priority?: number;
  /**
   * Served before every non-urgent channel (strict priority), for small control-ish
   * traffic such as hellos and interest updates. Bulk data here defeats the purpose.
   * @default false
   */
  urgent?: boolean;
  /** Queued messages at most. @default DEFAULT_SEND_QUEUE_CAPACITY */
  sendQueueCapacity?: number;
  /** Queued bytes at most; at least maxMessageBytes. @default max(maxMessageBytes, 4 MiB) */
  sendQueueBytes?: number;
  /** Largest message, sent or received. @default DEFAULT_MAX_MESSAGE_BYTES */
  maxMessageBytes?: number;
}

/** A descriptor with every default applied. */
export interface ResolvedChannel {
  id: number;
  priority: number;
  urgent: boolean;
  sendQueueCapacity: number;
  sendQueueBytes: number;
  maxMessageBytes: number;
}

const FOUR_MIB = 4 * 1024 * 1024;

function positiveInt(v: number, name: string): void {
  if (!Number.isInteger(v) || v <= 0) {
    throw new InvalidArgumentError(`${name} must be a positive integer, got ${v}`);
  }
}

export function resolveChannels(descs: readonly ChannelDescriptor[]): ResolvedChannel[] {
  if (descs.length === 0)
    throw new InvalidArgumentError('channels must declare at least one channel');
  const seen = new Set<number>();
  return descs.map(d => {
    if (!Number.isInteger(d.id) || d.id < 0 || d.id > 0xffff) {
      throw new InvalidArgumentError(`channel id must be an integer in 0..65535, got ${d.id}`);
    }
    if (seen.has(d.id)) throw new InvalidArgumentError(`channel id ${d.id} is declared twice`);
    seen.add(d.id);
    const priority = d.priority ?? 1;
    if (!(priority > 0) || !Number.isFinite(priority)) {
      throw new InvalidArgumentError(
        `channel ${d.id}: priority must be a positive number, got ${priority}`
      );
    }
    const maxMessageBytes = d.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    const sendQueueCapacity = d.sendQueueCapacity ?? DEFAULT_SEND_QUEUE_CAPACITY;
    const sendQueueBytes = d.sendQueueBytes ?? Math.max(maxMessageBytes, FOUR_MIB);
    positiveInt(maxMessageBytes, `channel ${d.id}: maxMessageBytes`);
    positiveInt(sendQueueCapacity, `channel ${d.id}: sendQueueCapacity`);
    positiveInt(sendQueueBytes, `channel ${d.id}: sendQueueBytes`);
    if (sendQueueBytes < maxMessageBytes) {
      throw new InvalidArgumentError(
        `channel ${d.id}: sendQueueBytes (${sendQueueBytes}) must be at least maxMessageBytes (${maxMessageBytes})`
      );
    }
    return {
      id: d.id,
      priority,
      urgent: d.urgent ?? false,
      sendQueueCapacity,
      sendQueueBytes,
      maxMessageBytes,
    };
  });
}
