/**
 * Node-level metrics read at scrape time from the node's own counters, so the message
 * path pays nothing for them. Names follow OpenTelemetry conventions with units; /metrics
 * turns them into Prometheus names (src/telemetry/metrics.ts). Every drop reason is
 * exported at zero from the start, so alerts on rate() have a series before the first drop.
 */
import type { Meter } from '@opentelemetry/api';
import type { ClusterDropReason, SenderDropReason } from '../dispatch';
import { CLUSTER_DROP_COMPONENTS } from '../dispatch';
import type { MeshNode } from '../node';
import type { NodeDropReason, ReplyDropReason, SubscriptionDropReason } from '../node';
import { IDEMPOTENCY_REFUSAL_REASONS } from '../node';
import type { EngineDropReason, SocketDropReason } from '../transport';

type MessageDropReason =
  SubscriptionDropReason | ReplyDropReason | NodeDropReason | ClusterDropReason | SenderDropReason;

/** Every reason a message can be dropped for (meshwire_messages_dropped_total{reason}). */
export const MESSAGE_DROP_REASONS = [
  'no_subscribers',
  'slow_consumer_drop_oldest',
  'slow_consumer_drop_newest',
  'unknown_or_expired_token',
  'unresolved_queue_full',
  'unresolved_ttl_expired',
  'duplicate',
  'unknown_peer',
  'sender_queue_full',
  'ttl_expired',
  'peer_unreachable',
  'shutdown',
  'link_send_failed',
  'address_sender_retired',
  'address_senders_full',
  'address_not_allowed',
  'address_targets_disabled',
] as const satisfies readonly MessageDropReason[];

/**
 * The drop ledger components whose drops are message drops: subscriptions, reply tokens,
 * the node, the cluster (unresolved queues, duplicates, unknown peers, address targets)
 * and its senders (queues, TTL, unreachable peers, links).
 */
export const MESSAGE_DROP_COMPONENTS = [
  'subscription',
  'reply_table',
  'node',
  ...CLUSTER_DROP_COMPONENTS,
] as const;

/** UDP driver drops the socket adds to its own (src/transport/rudp-socket.ts stats()). */
type DriverDropReason = 'send_error' | 'send_queue_full' | 'receive_error';

/** Every reason the UDP socket or a connection drops a datagram for. */
export const DATAGRAM_DROP_REASONS = [
  'unknown_connection',
  'malformed',
  'bad_auth',
  'oversized',
  'version',
  'half_open_limit',
  'connection_limit',
  'reset_rate_limited',
  'closed',
  'replay',
  'duplicate_handshake',
  'amplification',
  'flow_control',
  'not_ready',
  'send_error',
  'send_queue_full',
  'receive_error',
] as const satisfies readonly (SocketDropReason | EngineDropReason | DriverDropReason)[];

// Compile-time completeness: a reason added to a union but not to its list fails the build.
type Missing<All, Listed> = [Exclude<All, Listed>] extends [never] ? true : Exclude<All, Listed>;
const messageReasonsComplete: Missing<MessageDropReason, (typeof MESSAGE_DROP_REASONS)[number]> =
  true;
const datagramReasonsComplete: Missing<
  SocketDropReason | EngineDropReason | DriverDropReason,
  (typeof DATAGRAM_DROP_REASONS)[number]
> = true;
void messageReasonsComplete;
void datagramReasonsComplete;

export function registerNodeMetrics(meter: Meter, node: MeshNode): void {
  meter
    .createObservableGauge('meshwire.subscriptions.active', {
      description: 'Open Subscribe streams on this node',
      unit: '{subscription}',
    })
    .addCallback(r => r.observe(node.router.subscriptionCount));
  meter
    .createObservableGauge('meshwire.requests.pending', {
      description: 'Requests waiting for a reply from a local responder',
      unit: '{request}',
    })
    .addCallback(r => r.observe(node.replies.size));
  meter
    .createObservableGauge('meshwire.subscriber.queue.depth', {
      description: 'Deliveries buffered for subscribers, summed over subscriptions',
      unit: '{message}',
    })
    .addCallback(r => {
      let depth = 0;
      for (const s of node.router.subscriptions()) depth += s.buffered;
      r.observe(depth);
    });
  meter
    .createObservableCounter('meshwire.messages.delivered', {
      description: 'Deliveries handed to local subscriptions',
      unit: '{message}',
    })
    .addCallback(r => {
      let n = 0;
      for (const s of node.router.subscriptions()) n += s.delivered;
      r.observe(n + node.deliveredByClosedSubscriptions);
    });
  meter
    .createObservableCounter('meshwire.messages.dropped', {
      description: 'Messages dropped, by reason',
      unit: '{message}',
    })
    .addCallback(r => {
      const reasons: Record<string, number> = {};
      for (const reason of MESSAGE_DROP_REASONS) reasons[reason] = 0;
      // The node's ledger keeps the totals of subscriptions and senders that are gone.
      Object.assign(reasons, node.dropLedger.snapshot(MESSAGE_DROP_COMPONENTS));
      for (const [reason, v] of Object.entries(reasons)) r.observe(v, { reason });
    });
  // RequestMany (scatter-gather, src/node/request-many.ts): calls, replies, ends by reason.
  const gathers = node.gathers;
  meter
    .createObservableCounter('meshwire.request_many.calls', {
      description: 'RequestMany calls started',
      unit: '{call}',
    })
    .addCallback(r => r.observe(gathers.calls));
  meter
    .createObservableCounter('meshwire.request_many.replies', {
      description: 'Replies streamed to RequestMany callers',
      unit: '{message}',
    })
    .addCallback(r => r.observe(gathers.replies));
  meter
    .createObservableCounter('meshwire.request_many.ended', {
      description:
        'RequestMany calls ended, by reason (max_replies, timeout, stall, all_answered, cancelled, no_responders, slow_client, node_stopped)',
      unit: '{call}',
    })
    .addCallback(r => {
      for (const [reason, n] of gathers.ended) r.observe(n, { reason });
    });
  meter
    .createObservableCounter('meshwire.request_many.refused', {
      description: 'RequestMany calls refused: the node ran its most concurrent gathers',
      unit: '{call}',
    })
    .addCallback(r => r.observe(gathers.refused));
  meter
    .createObservableGauge('meshwire.request_many.active', {
      description: 'RequestMany calls gathering replies now',
      unit: '{call}',
    })
    .addCallback(r => r.observe(gathers.active));
  // Senders for target.address outside the peer directory (bounded, see src/dispatch/cluster.ts).
  meter
    .createObservableGauge('meshwire.cluster.address_senders', {
      description:
        'Senders for target.address outside the peer directory (at most maxAddressSenders)',
      unit: '{sender}',
    })
    .addCallback(r => r.observe(node.cluster?.addressSenderCount ?? 0));
  meter
    .createObservableCounter('meshwire.cluster.address_senders.retired', {
      description: 'Senders for address targets retired, by reason (idle: addressSenderIdleMs)',
      unit: '{sender}',
    })
    .addCallback(r => {
      const retired = node.cluster?.addressSenderRetirements;
      r.observe(retired?.get('idle') ?? 0, { reason: 'idle' });
    });
  registerIdempotencyMetrics(meter, node);
  // Messages sent/received, open streams, request latency, per-peer transport, queues.
  node.telemetry.transport.declareDatagramDropReasons(DATAGRAM_DROP_REASONS);
  node.telemetry.attach(meter);
  // Per peer: messages waiting for resolution (unresolved) or in the peer's sender queue.
  node.telemetry.transport.registerQueueSource(() => {
    const cluster = node.cluster;
    if (!cluster) return [];
    return node.directory.list().map(e => {
      const st = cluster.peerStatus(e.id);
      return {
        kind: st.state === 'unresolved' ? 'unresolved' : 'peer_sender',
        depth: st.queueDepth,
        attributes: { 'meshwire.peer.id': e.id },
      };
    });
  });
}

/** Idempotent Send (src/node/idempotency.ts): keys kept, claims, duplicates, refusals. */
function registerIdempotencyMetrics(meter: Meter, node: MeshNode): void {
  const idem = node.idempotency;
  meter
    .createObservableGauge('meshwire.idempotency.keys', {
      description: 'Idempotency keys this node keeps as their owner (at most idempotencyMaxKeys)',
      unit: '{key}',
    })
    .addCallback(r => r.observe(idem.store.size));
  meter
    .createObservableCounter('meshwire.idempotency.keys.accepted', {
      description: 'Idempotency keys this node, as their owner, accepted as new',
      unit: '{key}',
    })
    .addCallback(r => r.observe(idem.store.counts.accepted));
  meter
    .createObservableCounter('meshwire.idempotency.keys.forgotten', {
      description:
        'Idempotency records forgotten, by reason (window: the window ended; lease: a claim never completed)',
      unit: '{key}',
    })
    .addCallback(r => {
      r.observe(idem.store.counts.expired, { reason: 'window' });
      r.observe(idem.store.counts.leasesLapsed, { reason: 'lease' });
    });
  meter
    .createObservableCounter('meshwire.idempotency.duplicates', {
      description: 'Sends this node answered with duplicate = true (nothing delivered again)',
      unit: '{message}',
    })
    .addCallback(r => r.observe(idem.counts.duplicatesReturned));
  meter
    .createObservableCounter('meshwire.idempotency.claims.forwarded', {
      description: 'Idempotency claims this node sent to the key owner on another node',
      unit: '{claim}',
    })
    .addCallback(r => r.observe(idem.counts.claimsForwarded));
  meter
    .createObservableCounter('meshwire.idempotency.completions.lost', {
      description:
        'Acks of idempotent Sends that did not reach the key owner (the key stays pending until its lease lapses)',
      unit: '{claim}',
    })
    .addCallback(r => r.observe(idem.counts.completionsLost));
  meter
    .createObservableCounter('meshwire.idempotency.replications', {
      description:
        "Acks this node, as a key's owner, copied to the key's replica, by result (failed: kept on the owner only)",
      unit: '{key}',
    })
    .addCallback(r => {
      r.observe(idem.counts.replicated, { result: 'ok' });
      r.observe(idem.counts.replicationsFailed, { result: 'failed' });
    });
  meter
    .createObservableCounter('meshwire.idempotency.lookups', {
      description:
        'Lookups at replicas by this owner in its first window after starting, by result (found: a key its previous run accepted)',
      unit: '{key}',
    })
    .addCallback(r => {
      r.observe(idem.counts.recovered, { result: 'found' });
      r.observe(idem.counts.lookups - idem.counts.recovered, { result: 'missing' });
    });
  meter
    .createObservableCounter('meshwire.idempotency.refusals', {
      description: 'Idempotent Sends refused, by reason (nothing delivered)',
      unit: '{message}',
    })
    .addCallback(r => {
      for (const reason of IDEMPOTENCY_REFUSAL_REASONS) {
        r.observe(idem.refusals[reason], { reason });
      }
    });
}
