/**
 * Where a message goes: this node, a peer (by id or UDP address), or every node with a
 * matching interest; and the one-line errors when it cannot get there.
 */
import type { Message, Target } from '../common';
import {
  CancelledError,
  DeadlineExceededError,
  UnavailableError,
  formatHostPort,
  parseHostPort,
  quote,
} from '../common';
import type { Cluster, ClusterTarget, DeliveryScope } from '../dispatch';
import { validatePeerId } from '../peers';
import { startReceiveSpan } from '../telemetry';
import type { ReplyTable } from './reply-table';
import type { Router } from './router';

/** This node, a remote node, or by interest (no target). */
export type Destination = 'local' | 'interest' | ClusterTarget;

/**
 * Where a target points. `selfId` and `selfAddress` ("host:port" of peerListen) name this
 * node. Throws InvalidArgumentError for a bad peer id or address.
 */
export function resolveTarget(target: Target, selfId: string, selfAddress: string): Destination {
  if (target === undefined) return 'interest';
  if ('peerId' in target) {
    validatePeerId(target.peerId);
    return target.peerId === selfId ? 'local' : { peerId: target.peerId };
  }
  const addr = formatHostPort(parseHostPort(target.address, 'target address'));
  return addr === selfAddress ? 'local' : { address: addr };
}

/** The cluster, or UnavailableError naming the target when the node runs alone. */
export function requireCluster(
  cluster: Cluster | undefined,
  target: ClusterTarget,
  selfId: string
): Cluster {
  if (cluster) return cluster;
  const name =
    'peerId' in target ? `peer ${quote(target.peerId)}` : `address ${quote(target.address)}`;
  throw new UnavailableError(
    `${name} is unreachable: node ${selfId} runs without a cluster transport`
  );
}

/** Why a reply found no request: the end of "respond: the request this reply_to names ...". */
export function replyGoneReason(
  result: Exclude<ReturnType<ReplyTable['resolve']>, true>,
  selfId: string
): string {
  return result === 'unknown'
    ? `is unknown to node ${selfId} (issued before it restarted, or long finished)`
    : result === 'already answered'
      ? 'was already answered (a request takes the first reply)'
      : result === 'node stopped'
        ? `ended when node ${selfId} stopped`
        : result === 'gather ended'
          ? 'already ended: a RequestMany takes replies until max_replies, its timeout, its stall time or its cancel'
          : `is gone: the requester ${result}`;
}

/**
 * Delivers a message a peer sent here to the local subscribers its scope names (every
 * group, or plain subscribers and some queue groups), inside a `receive` span when
 * tracing. Returns the deliveries.
 */
export function deliverFromPeer(
  router: Router,
  selfId: string,
  message: Message,
  origin: string,
  scope: DeliveryScope
): number {
  const rx = startReceiveSpan(message, { localPeer: selfId, sourcePeer: origin });
  const m = rx ? (rx.message as Message) : message;
  let delivered = 0;
  const replyTo = scope.replyTo ?? '';
  if (scope.allGroups) delivered += router.publish(m, origin, false, replyTo);
  else {
    if (scope.plain) delivered += router.publish(m, origin, true, replyTo);
    for (const g of scope.groups) {
      if (router.publishToGroup(m, origin, g, replyTo)) delivered++;
    }
  }
  rx?.end(delivered);
  return delivered;
}

/**
 * Fails a pending request when `signal` aborts. A peer's request aborts when its deadline
 * passes (rpc HandlerContext): that is a timeout, not a cancel, whichever of the two
 * timers fires first. Returns the function that stops listening.
 */
export function cancelOnAbort(
  signal: AbortSignal,
  cancel: (err: Error) => void,
  topic: string,
  timeoutMs: number
): () => void {
  const onAbort = (): void =>
    cancel(
      signal.reason instanceof DeadlineExceededError
        ? new DeadlineExceededError(
            `request on ${quote(topic)} got no reply within ${timeoutMs} ms`
          )
        : new CancelledError('request cancelled by the caller')
    );
  // One 'abort' listener per signal, not per request: a RequestStream's requests share
  // its signal, and EventTarget scans every listener on each add and remove.
  let waiters = abortWaiters.get(signal);
  if (!waiters) {
    const all = new Set<() => void>();
    waiters = all;
    abortWaiters.set(signal, all);
    signal.addEventListener(
      'abort',
      () => {
        abortWaiters.delete(signal);
        for (const w of all) w();
      },
      { once: true }
    );
  }
  waiters.add(onAbort);
  return () => abortWaiters.get(signal)?.delete(onAbort);
}

/** What cancelOnAbort cancels when a signal aborts, by signal. */
const abortWaiters = new WeakMap<AbortSignal, Set<() => void>>();
