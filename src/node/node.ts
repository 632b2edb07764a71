/**
 * MeshNode: one meshwire node's core — validation, the local router, reply tokens,
 * the peer directory and the lifecycle (running -> draining -> stopped, seed 001's safe
 * close). The gRPC API calls into it; it knows nothing of gRPC.
 */
import { randomBytes } from 'node:crypto';
import type { Clock, HostPort, Message, Target } from '../common';
import {
  DeadlineExceededError,
  DropCounter,
  FailedPreconditionError,
  InvalidArgumentError,
  NoRespondersError,
  NotFoundError,
  UnavailableError,
  formatHostPort,
  parseHostPort,
  systemClock,
} from '../common';
import type { PeerEntry } from '../peers';
import { PeerDirectory, validatePeerId } from '../peers';
import type { NodeConfig } from './config';
import { peerSeeds } from './config';
import type { ReplyResult } from './reply-table';
import { ReplyTable } from './reply-table';
import { Router } from './router';
import type { SlowConsumerPolicy, Subscription } from './subscription';
import { validateTopic } from './topics';

export type AckMode = 'ACCEPTED' | 'DELIVERED';

export interface SendOptions {
  /** @default 'ACCEPTED' */
  ack?: AckMode;
  /** Fail at once when the target peer is not resolved. @default false */
  failFast?: boolean;
}

export interface SendResult {
  id: string;
  /** Subscriptions that received the message (known locally, or with DELIVERED). */
  delivered: number;
}

export interface RequestOptions {
  /** Milliseconds to wait for the first reply; 0 or undefined: the node's default. */
  timeoutMs?: number;
  failFast?: boolean;
  /** Aborts the wait (the caller went away). */
  signal?: AbortSignal;
}

export interface SubscribeOptions {
  patterns: string[];
  queueGroup?: string;
  maxBatch?: number;
  policy?: SlowConsumerPolicy;
  bufferSize?: number;
}

/** Limits on message headers (trace context and application metadata fit easily). */
export const MAX_HEADERS = 64;
export const MAX_HEADER_BYTES = 64 * 1024;
/** Largest max_batch a subscriber may ask for. */
export const MAX_BATCH_LIMIT = 1024;
/** Largest buffer_size a subscriber may ask for. */
export const MAX_SUBSCRIBER_BUFFER = 65536;

export type NodeState = 'running' | 'draining' | 'stopped';

export type NodeDropReason = 'no_subscribers';

/** A peer as ListPeers shows it. */
export interface PeerStatus {
  id: string;
  addresses: string[];
  source: string;
  state: string;
  srttUs: number;
  inFlight: number;
  queueDepth: number;
  lastError: string;
  lastSeenUnixMs: number;
}

export interface MeshNodeInit {
  config: NodeConfig;
  clock?: Clock;
}

export class MeshNode {
  readonly id: string;
  readonly config: NodeConfig;
  readonly router = new Router();
  readonly replies: ReplyTable;
  readonly directory = new PeerDirectory();
  /** Messages that reached no subscriber, by reason (informational). */
  readonly drops = new DropCounter<NodeDropReason>();
  private readonly clock: Clock;
  private readonly idPrefix = randomBytes(6).toString('base64url');
  private idCounter = 0;
  private readonly selfAddress: string;
  private stateValue: NodeState = 'running';
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];
  private readonly abortControllers = new Set<(err: Error) => void>();
  /** Counters of closed subscriptions, so exported totals never go down. */
  deliveredByClosedSubscriptions = 0;
  readonly droppedByClosedSubscriptions: Record<string, number> = {};

  constructor(init: MeshNodeInit) {
    this.config = init.config;
    this.id = init.config.nodeId;
    this.clock = init.clock ?? systemClock;
    this.replies = new ReplyTable(this.clock);
    this.selfAddress = formatHostPort(init.config.peerListen);
    for (const seed of peerSeeds(init.config)) {
      const existing = this.directory.get(seed.id);
      const addrs = [...(existing?.addresses ?? []), { host: seed.host, port: seed.port }];
      this.directory.put(
        seed.id,
        addrs,
        seed.source,
        seed.source === 'dns' ? seed.host : undefined
      );
    }
  }

  get state(): NodeState {
    return this.stateValue;
  }

  /** Work in progress: Sends awaiting an ack and Requests awaiting a reply. */
  get inFlightCount(): number {
    return this.inFlight;
  }

  /** Validates a message from a client and assigns its id. Throws InvalidArgumentError. */
  prepare(message: Message | null | undefined, what: 'send' | 'request' | 'reply'): Message {
    if (!message) {
      throw new InvalidArgumentError(
        `${what}: message is missing: set message.topic and message.payload`
      );
    }
    if (what !== 'reply' || message.topic) validateTopic(message.topic);
    const size = message.payload?.length ?? 0;
    if (size > this.config.maxMessageBytes) {
      throw new InvalidArgumentError(
        `${what}: payload is ${size} bytes; the maximum is ${this.config.maxMessageBytes} (maxMessageBytes)`
      );
    }
    if (size === 0 && what !== 'reply') {
      throw new InvalidArgumentError(
        `${what}: payload is empty: a message must carry at least one byte`
      );
    }
    // Decoders may hand us a shared frozen empty map; later layers add trace headers.
    const headers = message.headers && !Object.isFrozen(message.headers) ? message.headers : {};
    let headerBytes = 0;
    let count = 0;
    for (const k in headers) {
      count++;
      headerBytes += k.length + (headers[k]?.length ?? 0);
    }
    if (count > MAX_HEADERS || headerBytes > MAX_HEADER_BYTES) {
      throw new InvalidArgumentError(
        `${what}: ${count} headers of ${headerBytes} bytes; at most ${MAX_HEADERS} headers and ${MAX_HEADER_BYTES} bytes are allowed`
      );
    }
    if (!message.id) message.id = `${this.idPrefix}${(this.idCounter++).toString(36)}`;
    message.headers = headers;
    message.payload ??= Buffer.alloc(0);
    return message;
  }

  private checkRunning(): void {
    if (this.stateValue !== 'running') {
      throw new UnavailableError(
        `node ${this.id} is shutting down and accepts no new work; retry on another node`
      );
    }
  }

  /** True when the target means this node itself (or no target). */
  private isLocal(target: Target): 'local' | 'interest' | 'remote' {
    if (target === undefined) return 'interest';
    if ('peerId' in target) {
      validatePeerId(target.peerId);
      return target.peerId === this.id ? 'local' : 'remote';
    }
    const addr = formatHostPort(parseHostPort(target.address, 'target address'));
    return addr === this.selfAddress ? 'local' : 'remote';
  }

  private unreachable(target: Target): UnavailableError {
    const name =
      target && 'peerId' in target ? `peer "${target.peerId}"` : `address "${target?.address}"`;
    const known = target && 'peerId' in target && this.directory.get(target.peerId);
    return new UnavailableError(
      known
        ? `${name} is in the directory but not reachable: this node has no connection to it`
        : `${name} is unknown to node ${this.id}: add it with PutPeer or --peers`
    );
  }

  /**
   * Delivers a message. Local and by-interest delivery complete synchronously; the
   * result says how many local subscriptions took the message.
   */
  send(message: Message, target: Target, opts: SendOptions = {}): SendResult {
    this.checkRunning();
    const msg = this.prepare(message, 'send');
    const where = this.isLocal(target);
    if (where === 'remote') {
      throw this.unreachable(target);
    }
    void opts;
    const delivered = this.router.publish(msg, this.id);
    if (delivered === 0) this.drops.add('no_subscribers');
    return { id: msg.id, delivered };
  }

  /** Sends a request to one subscriber and resolves with the first reply. */
  async request(message: Message, target: Target, opts: RequestOptions = {}): Promise<ReplyResult> {
    this.checkRunning();
    const msg = this.prepare(message, 'request');
    const timeoutMs =
      opts.timeoutMs && opts.timeoutMs > 0 ? opts.timeoutMs : this.config.requestTimeoutMs;
    // Created now so a timeout carries the caller's stack.
    const timeoutError = new DeadlineExceededError(
      `request on "${msg.topic}" got no reply within ${timeoutMs} ms`
    );
    const where = this.isLocal(target);
    if (where === 'remote') throw this.unreachable(target);
    if (opts.signal?.aborted) throw new DeadlineExceededError('request cancelled by the caller');
    const pending = this.replies.register(timeoutMs, timeoutError);
    if (!this.router.deliverRequest(msg, this.id, pending.token)) {
      pending.cancel(new NoRespondersError(`no responders for "${msg.topic}" on node ${this.id}`));
    }
    const onAbort = (): void =>
      pending.cancel(new DeadlineExceededError('request cancelled by the caller'));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    this.abortControllers.add(pending.cancel);
    this.inFlight++;
    try {
      return await pending.promise;
    } finally {
      this.inFlight--;
      this.abortControllers.delete(pending.cancel);
      opts.signal?.removeEventListener('abort', onAbort);
      if (this.inFlight === 0) this.wakeIdle();
    }
  }

  /** Answers a request by its reply token. NotFoundError when unknown or expired. */
  respond(replyTo: string, message: Message): void {
    if (!replyTo) {
      throw new InvalidArgumentError(
        'respond: reply_to is missing: pass the Delivery.reply_to of the request'
      );
    }
    const msg = this.prepare(message, 'reply');
    if (!this.replies.resolve(replyTo, { reply: msg, responderPeer: this.id })) {
      throw new NotFoundError(
        `respond: reply_to "${replyTo.slice(0, 64)}" is unknown or expired (the requester timed out, was cancelled, or the token is wrong)`
      );
    }
  }

  /** Opens a subscription. Throws InvalidArgumentError for bad patterns or options. */
  subscribe(opts: SubscribeOptions): Subscription {
    this.checkRunning();
    if (!opts.patterns || opts.patterns.length === 0) {
      throw new InvalidArgumentError(
        'subscribe: topics is empty: give at least one pattern, e.g. "orders.>"'
      );
    }
    const maxBatch = opts.maxBatch || 1;
    if (maxBatch > MAX_BATCH_LIMIT) {
      throw new InvalidArgumentError(
        `subscribe: max_batch ${maxBatch} is over the limit of ${MAX_BATCH_LIMIT}`
      );
    }
    const bufferSize = opts.bufferSize || this.config.subscriberBufferSize;
    if (bufferSize > MAX_SUBSCRIBER_BUFFER) {
      throw new InvalidArgumentError(
        `subscribe: buffer_size ${bufferSize} is over the limit of ${MAX_SUBSCRIBER_BUFFER}`
      );
    }
    if (opts.queueGroup && !/^[A-Za-z0-9_.-]{1,128}$/.test(opts.queueGroup)) {
      throw new InvalidArgumentError(
        `subscribe: queue_group "${opts.queueGroup}" is not valid: use 1 to 128 characters of A-Z a-z 0-9 _ . -`
      );
    }
    const sub = this.router.subscribe({
      patterns: opts.patterns,
      queueGroup: opts.queueGroup,
      maxBatch,
      policy: opts.policy,
      bufferSize,
    });
    sub.onClose(() => {
      this.deliveredByClosedSubscriptions += sub.delivered;
      for (const [k, v] of Object.entries(sub.drops.snapshot())) {
        this.droppedByClosedSubscriptions[k] = (this.droppedByClosedSubscriptions[k] ?? 0) + v;
      }
    });
    return sub;
  }

  /** Every peer in the directory, plus this node itself first. */
  listPeers(): PeerStatus[] {
    const self: PeerStatus = {
      id: this.id,
      addresses: [this.selfAddress],
      source: 'self',
      state: 'self',
      srttUs: 0,
      inFlight: this.inFlight,
      queueDepth: 0,
      lastError: '',
      lastSeenUnixMs: Date.now(),
    };
    return [self, ...this.directory.list().map(e => this.peerStatus(e))];
  }

  private peerStatus(e: PeerEntry): PeerStatus {
    return {
      id: e.id,
      addresses: e.addresses.map(formatHostPort),
      source: e.source,
      state: 'unresolved',
      srttUs: 0,
      inFlight: 0,
      queueDepth: 0,
      lastError: '',
      lastSeenUnixMs: 0,
    };
  }

  /** Inserts or replaces a peer (Peers.PutPeer). */
  putPeer(id: string, addresses: string[]): PeerStatus {
    validatePeerId(id);
    if (id === this.id) {
      throw new InvalidArgumentError(`peer id "${id}" is this node's own id`);
    }
    if (!addresses || addresses.length === 0) {
      throw new InvalidArgumentError(
        `peer "${id}": addresses is empty: give at least one "host:port"`
      );
    }
    const parsed: HostPort[] = addresses.map(a => parseHostPort(a, `peer "${id}" address`));
    return this.peerStatus(this.directory.put(id, parsed, 'api'));
  }

  deletePeer(id: string): void {
    validatePeerId(id);
    this.directory.delete(id);
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * Safe close: stop accepting work, let in-flight Sends and Requests finish up to the
   * drain timeout, then fail what is left and close every subscription. Idempotent.
   */
  async drain(timeoutMs = this.config.drainTimeoutMs): Promise<{ drained: boolean }> {
    if (this.stateValue === 'stopped') return { drained: true };
    this.stateValue = 'draining';
    let drained = true;
    if (this.inFlight > 0) {
      drained = await new Promise<boolean>(resolve => {
        const timer = this.clock.setTimer(timeoutMs, () => resolve(false));
        this.idleWaiters.push(() => {
          timer.cancel();
          resolve(true);
        });
      });
    }
    const err = new FailedPreconditionError(`node ${this.id} stopped before a reply arrived`);
    for (const cancel of this.abortControllers) cancel(err);
    this.replies.closeAll(err);
    this.router.closeAll(null);
    this.stateValue = 'stopped';
    return { drained };
  }
}
