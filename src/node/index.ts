/**
 * Node: one meshwire node's core — topic matching, the local router, subscriptions with
 * bounded buffers, reply tokens, validation of client input and the lifecycle. No gRPC,
 * no sockets, no files: the app layer (src/app) builds a node's cluster and directory.
 */
export { MeshNode } from './node';
export {
  Idempotency,
  IDEMPOTENCY_REFUSAL_REASONS,
  MAX_IDEMPOTENCY_KEY_BYTES,
  DEFAULT_IDEMPOTENCY_MAX_KEYS,
  DEFAULT_IDEMPOTENCY_WINDOW_MS,
  checkIdempotencyKey,
} from './idempotency';
export type { IdempotencyCall, IdempotencyCounts, IdempotencyRefusalReason } from './idempotency';
export { IdempotencyStore } from './idempotency-store';
export type { ClaimAnswer } from './idempotency-store';
export { rendezvousOwner, rendezvousPair } from './rendezvous';
export {
  MAX_BATCH_LIMIT,
  MAX_HEADERS,
  MAX_HEADER_BYTES,
  MAX_SUBSCRIBER_BUFFER,
} from './validation';
export type {
  AckMode,
  SendOptions,
  SendResult,
  RequestOptions,
  RequestManyOptions,
  SubscribeOptions,
  NodeState,
  NodeDropReason,
  MeshNodeConfig,
  MeshNodeInit,
} from './types';
export type { PeerStatus } from './peer-admin';
export { Router } from './router';
export type { Interest } from '../common';
export { Subscription } from './subscription';
export type {
  Delivery,
  SlowConsumerPolicy,
  SubscriptionInit,
  SubscriptionDropReason,
} from './subscription';
export { ReplyTable } from './reply-table';
export { Gather, GATHER_END_REASONS, MAX_GATHER_MS, MAX_GATHER_REPLIES } from './gather';
export type { GatherEndReason, GatherLimits, GatherSink } from './gather';
export type { GatherHandle, GatherStats } from './request-many';
export { MAX_CONCURRENT_GATHERS } from './request-many';
export type { ReplyResult, ReplyDropReason } from './reply-table';
export { TopicTrie, validateTopic, validatePattern, patternMatches } from './topics';
