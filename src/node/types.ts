/** What MeshNode is given and what it answers: options, results and its configuration. */
import type { Clock, DropLedger, DropLogger, HostPort } from '../common';
import type { Cluster } from '../dispatch';
import type { PeerDirectory } from '../peers';
import type { SlowConsumerPolicy } from './subscription';

export type AckMode = 'ACCEPTED' | 'DELIVERED';

export interface SendOptions {
  /** @default 'ACCEPTED' */
  ack?: AckMode;
  /** Fail at once when the target peer is not resolved. @default false */
  failFast?: boolean;
  /** How long the message may wait for its peer, or for a DELIVERED ack. */
  timeoutMs?: number;
  /**
   * Exactly-once across retries (idempotency.ts): a key already accepted within the
   * window returns the original ack with `duplicate` and delivers nothing. Empty: off.
   */
  idempotencyKey?: string;
  /**
   * The key space of `idempotencyKey`: the client's token name when auth is on, so that
   * clients of different tokens never share keys. '' (default): one space for all.
   */
  idempotencyScope?: string;
}

export interface SendResult {
  id: string;
  /** Subscriptions that received the message (known locally, or with DELIVERED). */
  delivered: number;
  /** True when an idempotency key was already accepted: the original Send's id and count. */
  duplicate?: boolean;
}

export interface RequestOptions {
  /** Milliseconds to wait for the first reply; 0 or undefined: the node's default. */
  timeoutMs?: number;
  failFast?: boolean;
  /** Aborts the wait (the caller went away). */
  signal?: AbortSignal;
}

export interface RequestManyOptions {
  /**
   * Ends the gather (OK) this long after it started; 0 or undefined: the node's default
   * request timeout. At most MAX_GATHER_MS.
   */
  timeoutMs?: number;
  /** Ends at this many replies; 0 or undefined: MAX_GATHER_REPLIES (the most allowed). */
  maxReplies?: number;
  /** Ends this long after the latest reply with no new one; 0 or undefined: never. */
  stallMs?: number;
}

export interface SubscribeOptions {
  patterns: string[];
  queueGroup?: string;
  maxBatch?: number;
  policy?: SlowConsumerPolicy;
  bufferSize?: number;
}

export type NodeState = 'running' | 'draining' | 'stopped';

export type NodeDropReason = 'no_subscribers';

/** The configuration keys the node core reads (the app's NodeConfig has them all). */
export interface MeshNodeConfig {
  /** This node's id; peers address it by this name. */
  nodeId: string;
  /** The configured UDP peer address (a target naming it is this node). */
  peerListen: HostPort;
  /** How long a stopping node lets in-flight work finish. */
  drainTimeoutMs: number;
  /** Largest payload accepted. */
  maxMessageBytes: number;
  /** Default Request timeout when the caller sets none. */
  requestTimeoutMs: number;
  /** Deliveries buffered per subscription when the client sets no buffer_size. */
  subscriberBufferSize: number;
  /** How long an accepted idempotency key is remembered. @default 120000 */
  idempotencyWindowMs?: number;
  /** Idempotency keys this node keeps as owner, at most. @default 1000000 */
  idempotencyMaxKeys?: number;
}

/**
 * What a node is built from. The app layer (src/app) assembles these: it binds the peer
 * transport, builds the cluster over it and seeds the directory; a node given no cluster
 * runs alone (targets on other nodes are UNAVAILABLE).
 */
export interface MeshNodeInit {
  config: MeshNodeConfig;
  /**
   * Secret that reply tokens are signed with (the cluster secret, shared by every node), or
   * several during a rotation: the first signs, any verifies (MeshNode.setClusterSecrets).
   */
  replySecret: Buffer | readonly Buffer[];
  clock?: Clock;
  /** The peer directory the cluster resolves ids in. @default an empty one */
  directory?: PeerDirectory;
  /** The cluster transport to peers; its handler must call into this node. */
  cluster?: Cluster;
  /** The bound UDP peer address (resolved when peerListen has port 0). @default config.peerListen */
  peerAddress?: () => HostPort;
  /**
   * Where every drop of this node is counted and logged (src/common/drops.ts); the app
   * shares one ledger between the node, its cluster and its peer transport.
   * @default a ledger of its own, logging at debug through `logger`
   */
  drops?: DropLedger;
  /** Logger the default drop ledger writes its debug lines to. */
  logger?: DropLogger;
}
