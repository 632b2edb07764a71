/**
 * Outbound work as senders and the unresolved queues hold it, and the helpers both use:
 * which items wait for an answer, TTL expiry, and the bytes a queued message holds.
 */
import type { BoundedRing, Message } from '../common';
import type { DeliveryScope, PeerCallOp } from './wire';

/** A unit of outbound work. */
export type SenderItem =
  | {
      kind: 'message';
      message: Message;
      scope: DeliveryScope;
      /** Wait for the peer's DELIVERED count. */
      wantCount: boolean;
      /** This node's sequence number for the message (duplicate suppression at the peer). */
      seq: number;
      /** Absolute clock time after which the item is dropped. */
      expiresAt: number;
      bytes: number;
      resolve(delivered: number): void;
      reject(err: Error): void;
    }
  | {
      kind: 'request';
      message: Message;
      expiresAt: number;
      bytes: number;
      signal?: AbortSignal;
      resolve(r: { reply: Message; responderPeer: string }): void;
      reject(err: Error): void;
    }
  | {
      /** A client's reply, for the peer that issued its reply token. */
      kind: 'respond';
      token: string;
      message: Message;
      responderPeer: string;
      expiresAt: number;
      bytes: number;
      resolve(): void;
      reject(err: Error): void;
    }
  | {
      /** A request whose body the node layer encodes (an idempotency claim or completion). */
      kind: 'call';
      op: PeerCallOp;
      body: Buffer;
      expiresAt: number;
      bytes: number;
      resolve(body: Buffer): void;
      reject(err: Error): void;
    };

/** True for work whose caller waits for the peer's answer (never kept while unreachable). */
export function waitsForAnswer(item: SenderItem): boolean {
  return item.kind !== 'message' || item.wantCount;
}

/**
 * Removes the items of `queue` whose `expiresAt` has passed, keeping the order of the
 * rest, and calls `onExpired` for each. Returns the bytes removed.
 */
export function removeExpired(
  queue: BoundedRing<SenderItem>,
  now: number,
  onExpired: (item: SenderItem) => void
): number {
  let bytes = 0;
  const n = queue.length;
  for (let i = 0; i < n; i++) {
    const item = queue.shift() as SenderItem;
    if (item.expiresAt <= now) {
      bytes += item.bytes;
      onExpired(item);
    } else {
      queue.push(item);
    }
  }
  return bytes;
}

/**
 * Bytes a queued message holds: the payload, the client's strings and the framing. Queue
 * limits count these, so nothing a client sends sits in a queue unaccounted for.
 */
export function messageBytes(message: Message): number {
  let n = 64 + message.payload.length + message.id.length + message.topic.length;
  for (const k in message.headers) n += k.length + (message.headers[k]?.length ?? 0);
  return n;
}
