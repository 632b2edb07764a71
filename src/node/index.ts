/**
 * Node: one meshwire node's core — configuration, topic matching, the local router,
 * subscriptions with bounded buffers, reply tokens and the lifecycle. No gRPC here.
 */
export {
  loadConfig,
  peerSeeds,
  expandPeerDns,
  addConfigOptions,
  assertClusterSecret,
  CONFIG_KEYS,
} from './config';
export type { NodeConfig, PeerSeed, LoadConfigOptions } from './config';
export {
  MeshNode,
  MAX_BATCH_LIMIT,
  MAX_HEADERS,
  MAX_HEADER_BYTES,
  MAX_SUBSCRIBER_BUFFER,
} from './node';
export type {
  AckMode,
  SendOptions,
  SendResult,
  RequestOptions,
  SubscribeOptions,
  NodeState,
  PeerStatus,
  MeshNodeInit,
} from './node';
export { Router } from './router';
export type { Interest } from '../common';
export { Subscription } from './subscription';
export type { Delivery, SlowConsumerPolicy, SubscriptionInit } from './subscription';
export { ReplyTable } from './reply-table';
export type { ReplyResult } from './reply-table';
export { TopicTrie, validateTopic, validatePattern, patternMatches } from './topics';
