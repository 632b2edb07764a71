/**
 * Dispatch: moving messages between nodes. The Cluster maps peer ids to per-address
 * PeerSenders (bounded queues, reconnect with backoff, fail-fast while unreachable) that
 * one SenderPool creates, shares and retires (address targets bounded and idle-timed),
 * holds an unresolved queue with TTL, accepts peers' links, suppresses duplicates and
 * carries interest advertisements. Knows nodes and messages, not subscriptions.
 */
export { Cluster, CLUSTER_DROP_COMPONENTS } from './cluster';
export type {
  ClusterInit,
  ClusterHandler,
  ClusterTarget,
  ClusterPeerStatus,
  ClusterDropReason,
} from './cluster';
export { SenderPool, DEFAULT_ADDRESS_TARGET_LIMITS } from './sender-pool';
export type {
  SenderPoolInit,
  AddressTargetLimits,
  AddressSenderRetireReason,
  AddressTargetRefusal,
} from './sender-pool';
export { UnresolvedQueues } from './unresolved-queues';
export { InboundLinks } from './inbound-links';
export type { InboundLinksInit } from './inbound-links';
export type { UnresolvedQueuesInit } from './unresolved-queues';
export type { SenderItem } from './sender-item';
export { PeerSender } from './peer-sender';
export type {
  PeerSenderInit,
  SenderState,
  SenderDropReason,
  Dialer,
  ClusterLogger,
} from './peer-sender';
export { PeerLink } from './peer-link';
export type { LinkHandler, PeerLinkInit } from './peer-link';
export { DedupWindow } from './dedup';
export {
  ALL_SUBSCRIBERS,
  CHANNEL_CONTROL,
  CHANNEL_DATA,
  Op,
  encodeMessageBody,
  decodeMessageBody,
} from './wire';
export type { DeliveryScope, InterestUpdate, Hello, PeerCallOp } from './wire';
