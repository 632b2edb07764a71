/**
 * MeshNode: one meshwire node's core — the local router, reply tokens, routing to local
 * subscribers or peers, and the lifecycle (running -> draining -> stopped, a safe close:
 * stop accepting, drain, then close). The gRPC API calls into it; it knows nothing of gRPC,
 * sockets or files: the app layer (src/app) gives it its cluster and directory.
 * Validation lives in validation.ts, the Peers API's view in peer-admin.ts and tracing
 * annotations in span-annotations.ts.
 */
import type { Clock, HostPort, Interest, Message, Target } from '../common';
import {
  LATENCY_TRACE,
  Stage,
  quote,
  traceMark,
  CancelledError,
  DeadlineExceededError,
  DropCounter,
  DropLedger,
  FailedPreconditionError,
  InvalidArgumentError,
  NoRespondersError,
  NotFoundError,
  UnavailableError,
  formatHostPort,
  systemClock,
} from '../common';
import type {
  Cluster,
  ClusterTarget,
  DeliveryScope,
  InterestUpdate,
  PeerCallOp,
} from '../dispatch';
import { ALL_SUBSCRIBERS, Op } from '../dispatch';
import { PeerDirectory, validatePeerId } from '../peers';
import {
  MessagingTelemetry,
  endSpan,
  messagingTracingEnabled,
  startReceiveSpan,
  startRespondSpan,
  traceGatherReply,
  traceSend,
} from '../telemetry';
import type { GatherEndReason } from './gather';
import { Gather } from './gather';
import type { GatherHandle } from './request-many';
import { GatherStats, gatherLimits } from './request-many';
import type { ReplyResult } from './reply-table';
import { ReplyTable, replyTokenKey } from './reply-table';
import { InFlightWork } from './in-flight';
import {
  DEFAULT_IDEMPOTENCY_MAX_KEYS,
  DEFAULT_IDEMPOTENCY_WINDOW_MS,
  Idempotency,
} from './idempotency';
import type { IdempotencyCall } from './idempotency';
import { InterestTable } from './interest-table';
import type { PeerStatus } from './peer-admin';
import { peerIdAt, peerStatusOf, putPeer, selfStatus } from './peer-admin';
import { Router } from './router';
import {
  cancelOnAbort,
  deliverFromPeer,
  replyGoneReason,
  requireCluster,
  resolveTarget,
} from './routing';
import { annotateRemote } from './span-annotations';
import type { Subscription } from './subscription';
import type {
  MeshNodeConfig,
  MeshNodeInit,
  NodeDropReason,
  NodeState,
  RequestManyOptions,
  RequestOptions,
  SendOptions,
  SendResult,
  SubscribeOptions,
} from './types';
import { MessageValidator, checkReplyTo, checkSubscribeOptions } from './validation';

/** The peer op of each idempotency call, and back. */
const IDEMPOTENCY_OPS: Record<IdempotencyCall, PeerCallOp> = {
  claim: Op.IDEMPOTENCY_CLAIM,
  complete: Op.IDEMPOTENCY_COMPLETE,
  replicate: Op.IDEMPOTENCY_REPLICATE,
  lookup: Op.IDEMPOTENCY_LOOKUP,
};
const IDEMPOTENCY_CALLS: Record<PeerCallOp, IdempotencyCall> = {
  [Op.IDEMPOTENCY_CLAIM]: 'claim',
  [Op.IDEMPOTENCY_COMPLETE]: 'complete',
  [Op.IDEMPOTENCY_REPLICATE]: 'replicate',
  [Op.IDEMPOTENCY_LOOKUP]: 'lookup',
};

/** How long a reply forwarded to the node that issued its token may take to get there. */
const FORWARDED_REPLY_TIMEOUT_MS = 10_000;

export class MeshNode {
  readonly id: string;
  readonly config: MeshNodeConfig;
  readonly router = new Router();
  readonly replies: ReplyTable;
  readonly directory: PeerDirectory;
  /** Every drop of this node by component and reason: totals, debug logs. */
  readonly dropLedger: DropLedger;
  /** Messages that reached no subscriber, by reason (informational). */
  readonly drops: DropCounter<NodeDropReason>;
  /** Message counters, open streams, request latency and per-peer transport (/metrics). */
  readonly telemetry = new MessagingTelemetry();
  private readonly clock: Clock;
  private readonly validator: MessageValidator;
  private readonly selfAddress: string;
  private stateValue: NodeState = 'running';
  private readonly work: InFlightWork;
  private readonly pendingCancels = new Set<(err: Error) => void>();
  /** Peers' advertised subscription patterns. */
  readonly interest = new InterestTable();
  /** The cluster transport (undefined: this node runs alone). */
  readonly cluster: Cluster | undefined;
  private readonly boundPeerAddress: (() => HostPort) | undefined;
  /** Settles when connected peers have acknowledged the latest added interest. */
  private interestAcked: Promise<void> = Promise.resolve();
  /** RequestMany calls, replies and ends (/metrics). */
  readonly gathers = new GatherStats();
  /** Deliveries to closed subscriptions, so the exported total never goes down. */
  deliveredByClosedSubscriptions = 0;
  /** Idempotency keys: claims at their owners, and the records of keys this node owns. */
  readonly idempotency: Idempotency;
  /** This node and the peers it lists (not learned ones), sorted; undefined: recompute. */
  private membersCache: string[] | undefined;

  constructor(init: MeshNodeInit) {
    this.config = init.config;
    this.id = init.config.nodeId;
    this.clock = init.clock ?? systemClock;
    this.directory = init.directory ?? new PeerDirectory();
    this.cluster = init.cluster;
    this.boundPeerAddress = init.peerAddress;
    this.work = new InFlightWork(this.clock);
    this.validator = new MessageValidator(init.config.maxMessageBytes);
    this.dropLedger =
      init.drops ??
      new DropLedger({
        clock: this.clock,
        logger: init.logger,
      });
    this.drops = new DropCounter('node', this.dropLedger);
    this.replies = new ReplyTable(
      this.clock,
      this.id,
      (Buffer.isBuffer(init.replySecret) ? [init.replySecret] : init.replySecret).map(
        replyTokenKey
      ),
      this.dropLedger
    );
    this.selfAddress = formatHostPort(init.config.peerListen);
    const forgetMembers = (): void => {
      this.membersCache = undefined;
    };
    this.directory.on('put', forgetMembers);
    this.directory.on('delete', forgetMembers);
    this.idempotency = new Idempotency({
      localId: this.id,
      clock: this.clock,
      windowMs: init.config.idempotencyWindowMs ?? DEFAULT_IDEMPOTENCY_WINDOW_MS,
      maxKeys: init.config.idempotencyMaxKeys ?? DEFAULT_IDEMPOTENCY_MAX_KEYS,
      peers: {
        members: () => this.members(),
        call: (peerId, call, body, timeoutMs) =>
          this.callPeer(peerId, IDEMPOTENCY_OPS[call], body, timeoutMs),
      },
    });
    this.router.on('interest', (added, removed) => {
      const acked = this.cluster?.broadcastInterest({
        snapshot: false,
        add: added,
        remove: removed,
      });
      if (acked && added.length > 0) this.interestAcked = acked;
    });
  }

  /**
   * The members idempotency keys are hashed over: this node and every peer it lists,
   * except peers it only learned because they dialled in (every node lists the same ones).
   */
  members(): readonly string[] {
    if (!this.membersCache) {
      const ids = new Set([this.id]);
      for (const e of this.directory.list()) if (e.source !== 'learned') ids.add(e.id);
      this.membersCache = [...ids].sort();
    }
    return this.membersCache;
  }

  private callPeer(
    peerId: string,
    op: PeerCallOp,
    body: Buffer,
    timeoutMs: number
  ): Promise<Buffer> {
    if (!this.cluster) {
      return Promise.reject(
        new UnavailableError(`node ${this.id} runs without a cluster transport`)
      );
    }
    return this.cluster.call(peerId, op, body, timeoutMs);
  }

  /** Tracing detail on a message leaving for a peer (span-annotations.ts). */
  private annotateRemote(msg: Message, where: ClusterTarget, eventsOnly = false): void {
    annotateRemote(this, msg, where, eventsOnly);
  }

  /** The id of the peer at UDP address `addr` ("host:port"), else the address itself. */
  /**
   * New cluster secrets for reply tokens (a rotation): tokens are signed with the first
   * from now on; tokens signed with any of them are accepted.
   */
  setClusterSecrets(secrets: readonly Buffer[]): void {
    this.replies.setKeys(secrets.map(replyTokenKey));
  }

  peerIdAt(addr: string): string {
    return peerIdAt(this.directory, addr);
  }

  /** The bound UDP peer address (resolved when peerListen has port 0). */
  get peerAddress(): HostPort {
    return this.boundPeerAddress ? this.boundPeerAddress() : this.config.peerListen;
  }

  get state(): NodeState {
    return this.stateValue;
  }

  /** Work in progress: Sends awaiting an ack and Requests awaiting a reply. */
  get inFlightCount(): number {
    return this.work.size;
  }

  /** Validates a message from a client and assigns its id. Throws InvalidArgumentError. */
  prepare(message: Message | null | undefined, what: 'send' | 'request' | 'reply'): Message {
    return this.validator.prepare(message, what);
  }

  private checkRunning(): void {
    if (this.stateValue !== 'running') {
      throw new UnavailableError(
        `node ${this.id} is shutting down and accepts no new work; retry on another node`
      );
    }
  }

  /**
   * Delivers a message. Local delivery and ACCEPTED hand-offs complete synchronously
   * (errors are thrown); DELIVERED to remote nodes returns a promise of the total count.
   */
  send(message: Message, target: Target, opts: SendOptions = {}): SendResult | Promise<SendResult> {
    this.checkRunning();
    if (opts.idempotencyKey) this.idempotency.checkKey(opts.idempotencyKey);
    const msg = this.prepare(message, 'send');
    if (opts.idempotencyKey) return this.sendIdempotent(msg, target, opts, opts.idempotencyKey);
    this.telemetry.sentMessages++;
    if (!messagingTracingEnabled()) return this.sendPrepared(msg, target, opts);
    return traceSend(msg, { localPeer: this.id, target }, () =>
      this.sendPrepared(msg, target, opts)
    );
  }

  /** send() with an idempotency key: delivered only when the key's owner says it is new. */
  private sendIdempotent(
    msg: Message,
    target: Target,
    opts: SendOptions,
    key: string
  ): Promise<SendResult> {
    const timeoutMs = opts.timeoutMs ?? this.config.requestTimeoutMs;
    const deliver = (): SendResult | Promise<SendResult> => {
      this.checkRunning();
      this.telemetry.sentMessages++;
      if (!messagingTracingEnabled()) return this.sendPrepared(msg, target, opts);
      return traceSend(msg, { localPeer: this.id, target }, () =>
        this.sendPrepared(msg, target, opts)
      );
    };
    // The client sees a delivered count with DELIVERED only; a duplicate returns the same.
    const acked = (r: SendResult): number => (opts.ack === 'DELIVERED' ? r.delivered : 0);
    return this.work.track(
      this.idempotency.publish(key, timeoutMs, deliver, acked, opts.idempotencyScope ?? '')
    );
  }

  /** send() after validation, inside the producer span when tracing. */
  private sendPrepared(
    msg: Message,
    target: Target,
    opts: SendOptions
  ): SendResult | Promise<SendResult> {
    const where = resolveTarget(target, this.id, this.selfAddress);
    const wantCount = opts.ack === 'DELIVERED';
    if (where === 'local') {
      const delivered = this.publishLocal(msg);
      if (delivered === 0) this.drops.add('no_subscribers');
      return { id: msg.id, delivered };
    }
    if (where !== 'interest') {
      const cluster = requireCluster(this.cluster, where, this.id);
      this.annotateRemote(msg, where);
      if (!wantCount) {
        cluster.enqueue(where, msg, { timeoutMs: opts.timeoutMs, failFast: opts.failFast });
        return { id: msg.id, delivered: 0 };
      }
      return this.work.track(
        cluster
          .send(where, msg, {
            wantCount: true,
            timeoutMs: opts.timeoutMs ?? this.config.requestTimeoutMs,
            failFast: opts.failFast,
          })
          .then(delivered => ({ id: msg.id, delivered }))
      );
    }
    // By interest: local subscribers, plus every peer with matching interest; each queue
    // group gets the message once cluster-wide, preferring a local member.
    const local = this.publishLocal(msg);
    const plan = this.cluster
      ? this.interest.plan(msg.topic, g => this.router.hasGroupMember(msg.topic, g))
      : [];
    if (plan.length === 0) {
      if (local === 0) this.drops.add('no_subscribers');
      return { id: msg.id, delivered: local };
    }
    const cluster = this.cluster as Cluster;
    if (messagingTracingEnabled()) {
      for (const p of plan) this.annotateRemote(msg, { peerId: p.peerId }, true);
    }
    if (!wantCount) {
      for (const { peerId, scope } of plan) {
        try {
          cluster.enqueue({ peerId }, msg, { scope, timeoutMs: opts.timeoutMs });
        } catch {
          // Counted by the cluster (queue full, unreachable); other peers still get it.
        }
      }
      return { id: msg.id, delivered: local };
    }
    const timeoutMs = opts.timeoutMs ?? this.config.requestTimeoutMs;
    return this.work.track(
      Promise.all(
        plan.map(({ peerId, scope }) =>
          cluster.send({ peerId }, msg, { scope, wantCount: true, timeoutMs }).catch(() => 0)
        )
      ).then(counts => ({ id: msg.id, delivered: counts.reduce((a, b) => a + b, local) }))
    );
  }

  /**
   * Hands a message from this node's clients to local subscribers, inside a `receive`
   * span when tracing.
   */
  private publishLocal(msg: Message, replyTo = ''): number {
    this.telemetry.receivedLocal++;
    // Tracing off: not even the span's init object, once a message.
    if (!messagingTracingEnabled()) return this.router.publish(msg, this.id, false, replyTo);
    const rx = startReceiveSpan(msg, { localPeer: this.id, sourcePeer: this.id });
    if (!rx) return this.router.publish(msg, this.id, false, replyTo);
    const delivered = this.router.publish(rx.message as Message, this.id, false, replyTo);
    rx.end(delivered);
    return delivered;
  }

  /** Sends a request to one responder (here or on a peer) and resolves with the first reply. */
  request(message: Message, target: Target, opts: RequestOptions = {}): Promise<ReplyResult> {
    this.telemetry.sentRequests++;
    return this.telemetry.timeRequest(this.requestUntimed(message, target, opts), () =>
      this.clock.now()
    );
  }

  private requestUntimed(
    message: Message,
    target: Target,
    opts: RequestOptions
  ): Promise<ReplyResult> {
    try {
      this.checkRunning();
      const msg = this.prepare(message, 'request');
      const timeoutMs =
        opts.timeoutMs && opts.timeoutMs > 0 ? opts.timeoutMs : this.config.requestTimeoutMs;
      if (opts.signal?.aborted) throw new CancelledError('request cancelled by the caller');
      let where = resolveTarget(target, this.id, this.selfAddress);
      if (where === 'interest') {
        if (this.router.hasSubscribers(msg.topic)) where = 'local';
        else {
          const peer = this.cluster ? this.interest.pickResponder(msg.topic) : undefined;
          if (!peer) {
            throw new NoRespondersError(
              `no responders for ${quote(msg.topic)} on node ${this.id} or its peers`
            );
          }
          where = { peerId: peer };
        }
      }
      const span = {
        localPeer: this.id,
        target: where === 'local' ? undefined : where,
        request: true,
      };
      if (LATENCY_TRACE) traceMark(Stage.NODE_ROUTED);
      if (where === 'local') {
        // Tracing off: no closure for traceSend to call, once a request.
        if (!messagingTracingEnabled()) {
          return this.work.track(this.requestLocal(msg, timeoutMs, opts.signal));
        }
        return this.work.track(
          traceSend(msg, span, () => this.requestLocal(msg, timeoutMs, opts.signal))
        );
      }
      const cluster = requireCluster(this.cluster, where, this.id);
      return this.work.track(
        traceSend(msg, span, () => {
          this.annotateRemote(msg, where);
          return cluster.request(where, msg, {
            timeoutMs,
            failFast: opts.failFast,
            signal: opts.signal,
          });
        })
      );
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /**
   * Scatter-gather: delivers a request to every matching subscriber (by interest: on this
   * node and every peer with interest, one member per queue group cluster-wide; or every
   * subscriber of the target node), all sharing one reply token, and passes each reply to
   * `sink.reply` as it arrives until the gather ends (gather.ts: max_replies, timeout,
   * stall, every delivery answered). `sink.end` is called once, perhaps before this
   * returns (no responders). Throws for bad input (InvalidArgumentError), a stopping node
   * or a target without cluster (UnavailableError), and at the node's cap on concurrent
   * gathers (ResourceExhaustedError).
   */
  requestMany(
    message: Message,
    target: Target,
    opts: RequestManyOptions,
    sink: {
      reply(r: ReplyResult): void;
      /** `detail` says why when nobody could be asked (no_responders). */
      end(reason: GatherEndReason, detail?: string): void;
    }
  ): GatherHandle {
    this.checkRunning();
    const msg = this.prepare(message, 'request');
    const limits = gatherLimits(opts, this.config.requestTimeoutMs);
    const where = resolveTarget(target, this.id, this.selfAddress);
    const cluster =
      where === 'local' || where === 'interest'
        ? this.cluster
        : requireCluster(this.cluster, where, this.id);
    this.gathers.admit(this.id);
    this.telemetry.sentRequests++;
    let detail: string | undefined;
    let finished!: (reason: GatherEndReason) => void;
    const ended = new Promise<GatherEndReason>(resolve => (finished = resolve));
    const entry = this.replies.registerMany(
      msg.topic,
      r => gather.reply(r),
      () => gather.end('node_stopped')
    );
    const gather: Gather = new Gather(this.clock, limits, {
      reply: r => {
        this.gathers.replies++;
        traceGatherReply(msg, r.reply, this.id, r.responderPeer);
        sink.reply(r);
      },
      end: reason => {
        entry.close();
        this.gathers.end(reason);
        finished(reason);
        sink.end(
          reason,
          reason === 'no_responders'
            ? (detail ?? `no responders for ${quote(msg.topic)} on node ${this.id} or its peers`)
            : undefined
        );
      },
    });
    const scatter = (): Promise<GatherEndReason> => {
      let deliveries: number | Promise<number>;
      try {
        deliveries = this.scatter(msg, where, cluster, entry.token, limits.timeoutMs);
      } catch (err) {
        detail = (err as Error).message;
        deliveries = 0;
      }
      if (typeof deliveries === 'number') gather.delivered(deliveries);
      else {
        deliveries.then(
          n => gather.delivered(n),
          (err: Error) => {
            detail = err.message;
            gather.delivered(0);
          }
        );
      }
      return ended;
    };
    void this.work.track(
      messagingTracingEnabled()
        ? traceSend(
            msg,
            {
              localPeer: this.id,
              target: typeof where === 'object' ? where : undefined,
              request: true,
            },
            scatter
          )
        : scatter()
    );
    return { cancel: (reason = 'cancelled') => gather.end(reason) };
  }

  /**
   * Hands a RequestMany's message, with its reply token, to every subscriber `where`
   * names; the total deliveries (a promise when peers report theirs).
   */
  private scatter(
    msg: Message,
    where: 'local' | 'interest' | ClusterTarget,
    cluster: Cluster | undefined,
    replyTo: string,
    timeoutMs: number
  ): number | Promise<number> {
    if (where === 'local') return this.publishLocal(msg, replyTo);
    if (where !== 'interest') {
      this.annotateRemote(msg, where);
      return (cluster as Cluster).send(where, msg, {
        scope: { ...ALL_SUBSCRIBERS, replyTo },
        wantCount: true,
        timeoutMs,
      });
    }
    const local = this.publishLocal(msg, replyTo);
    const plan = cluster
      ? this.interest.plan(msg.topic, g => this.router.hasGroupMember(msg.topic, g))
      : [];
    if (plan.length === 0) return local;
    if (messagingTracingEnabled()) {
      for (const p of plan) this.annotateRemote(msg, { peerId: p.peerId }, true);
    }
    return Promise.all(
      plan.map(({ peerId, scope }) =>
        (cluster as Cluster)
          .send({ peerId }, msg, { scope: { ...scope, replyTo }, wantCount: true, timeoutMs })
          // A peer that cannot be reached delivered nothing: the others still answer.
          .catch(() => 0)
      )
    ).then(counts => counts.reduce((a, b) => a + b, local));
  }

  /** A request for this node's own responders (from a client or from a peer). */
  private requestLocal(
    msg: Message,
    timeoutMs: number,
    signal?: AbortSignal,
    origin = this.id
  ): Promise<ReplyResult> {
    const topic = msg.topic;
    const pending = this.replies.register(
      timeoutMs,
      () =>
        new DeadlineExceededError(`request on ${quote(topic)} got no reply within ${timeoutMs} ms`),
      topic
    );
    if (origin === this.id) this.telemetry.receivedLocal++;
    else this.telemetry.receivedFromPeers++;
    const rx = startReceiveSpan(msg, { localPeer: this.id, sourcePeer: origin, request: true });
    const routed = this.router.deliverRequest(
      rx ? (rx.message as Message) : msg,
      origin,
      pending.token
    );
    if (LATENCY_TRACE) traceMark(Stage.ROUTER_QUEUED);
    rx?.end(routed ? 1 : 0);
    if (!routed) {
      pending.cancel(new NoRespondersError(`no responders for ${quote(topic)} on node ${this.id}`));
      return pending.promise;
    }
    this.pendingCancels.add(pending.cancel);
    const detach = signal ? cancelOnAbort(signal, pending.cancel, topic, timeoutMs) : undefined;
    const cleanup = (): void => {
      this.pendingCancels.delete(pending.cancel);
      detach?.();
    };
    // then(ok, fail), not finally(): two microtask hops fewer between reply and caller
    return pending.promise.then(
      r => {
        cleanup();
        return r;
      },
      (err: unknown) => {
        cleanup();
        throw err;
      }
    );
  }

  /**
   * Answers a request by its reply token, on whichever node of the cluster the client
   * called: a token issued by another node is forwarded there (the promise settles when
   * that node has the reply). NotFoundError says why a request is gone; a token this
   * cluster did not issue is InvalidArgumentError.
   */
  respond(replyTo: string, message: Message): void | Promise<void> {
    checkReplyTo(replyTo);
    const msg = this.prepare(message, 'reply');
    const token = this.replies.parse(replyTo);
    if (!token) {
      throw new InvalidArgumentError(
        `respond: reply_to ${quote(replyTo)} is not a reply token of this cluster: pass the Delivery.reply_to of the request unchanged`
      );
    }
    this.telemetry.sentReplies++;
    const span = startRespondSpan(msg, this.id);
    if (token.issuer === this.id) {
      try {
        this.resolveReply(token.opaque, msg);
        endSpan(span);
      } catch (err) {
        endSpan(span, (err as Error).message);
        throw err;
      }
      return;
    }
    if (!this.cluster) {
      const err = new UnavailableError(
        `respond: the request came through node ${quote(token.issuer)}, and node ${this.id} runs without a cluster transport`
      );
      endSpan(span, err.message);
      throw err;
    }
    return this.cluster
      .respond(token.issuer, replyTo, msg, this.id, FORWARDED_REPLY_TIMEOUT_MS)
      .then(
        () => endSpan(span),
        (err: Error) => {
          endSpan(span, err.message);
          throw err;
        }
      );
  }

  /** Completes a request this node issued the token of; NotFoundError says why it is gone. */
  private resolveReply(opaque: string, reply: Message, via = this.id): void {
    // A RequestMany's reply names the node it came through (a Request's: this node, as before).
    const responderPeer = via !== this.id && this.replies.isGather(opaque) ? via : this.id;
    const result = this.replies.resolve(opaque, { reply, responderPeer });
    if (LATENCY_TRACE) traceMark(Stage.REPLY_RESOLVED);
    if (result === true) return;
    const why = replyGoneReason(result, this.id);
    throw new NotFoundError(`respond: the request this reply_to names ${why}`);
  }

  // --- ClusterHandler: what peers ask of this node -----------------------------------

  onMessage(message: Message, origin: string, scope: DeliveryScope): number {
    if (this.stateValue === 'stopped') return 0;
    this.telemetry.receivedFromPeers++;
    return deliverFromPeer(this.router, this.id, message, origin, scope);
  }

  onRequest(
    message: Message,
    origin: string,
    timeoutMs: number,
    signal: AbortSignal
  ): Promise<ReplyResult> {
    if (this.stateValue === 'stopped') {
      return Promise.reject(new UnavailableError(`node ${this.id} has stopped`));
    }
    return this.work.track(this.requestLocal(message, timeoutMs, signal, origin));
  }

  onRespond(token: string, reply: Message, responderPeer: string): void {
    const parsed = this.replies.parse(token);
    if (!parsed || parsed.issuer !== this.id) {
      throw new InvalidArgumentError(
        `respond: reply_to was not issued by node ${this.id}, or not by this cluster`
      );
    }
    this.resolveReply(parsed.opaque, reply, responderPeer);
  }

  /** A peer's claim or completion of an idempotency key this node owns. */
  onPeerCall(op: PeerCallOp, body: Buffer, peerId: string, timeoutMs: number): Promise<Buffer> {
    return this.idempotency.onPeerCall(IDEMPOTENCY_CALLS[op], body, timeoutMs, peerId);
  }

  onPeerInterest(peerId: string, update: InterestUpdate): void {
    this.interest.apply(peerId, update);
  }

  onPeerGone(peerId: string): void {
    this.interest.forget(peerId);
  }

  localInterests(): Interest[] {
    return this.router.interests();
  }

  /** Opens a subscription. Throws InvalidArgumentError for bad patterns or options. */
  subscribe(opts: SubscribeOptions): Subscription {
    this.checkRunning();
    const { maxBatch, bufferSize } = checkSubscribeOptions(opts, this.config.subscriberBufferSize);
    const sub = this.router.subscribe({
      patterns: opts.patterns,
      queueGroup: opts.queueGroup,
      maxBatch,
      policy: opts.policy,
      bufferSize,
      drops: this.dropLedger,
    });
    // Router.subscribe announced any new pattern synchronously: wait for that announcement.
    sub.ready = this.interestAcked;
    sub.onClose(() => {
      this.deliveredByClosedSubscriptions += sub.delivered;
    });
    return sub;
  }

  /** Every peer in the directory, plus this node itself first. */
  listPeers(): PeerStatus[] {
    const self = selfStatus(this.id, formatHostPort(this.peerAddress), this.work.size);
    return [self, ...this.directory.list().map(e => peerStatusOf(e, this.cluster))];
  }

  /** Inserts or replaces a peer (Peers.PutPeer). */
  putPeer(id: string, addresses: string[]): PeerStatus {
    return peerStatusOf(putPeer(this.directory, this.id, id, addresses), this.cluster);
  }

  deletePeer(id: string): void {
    validatePeerId(id);
    this.directory.delete(id);
  }

  /**
   * Safe close: stop accepting work, let in-flight Sends and Requests finish up to the
   * drain timeout, drain the cluster's links, then fail what is left and close every
   * subscription. Idempotent. The peer transport under the cluster stays open: the app
   * (src/app/lifecycle.ts) closes it after this.
   */
  async drain(timeoutMs = this.config.drainTimeoutMs): Promise<{ drained: boolean }> {
    if (this.stateValue === 'stopped') return { drained: true };
    this.stateValue = 'draining';
    let drained = await this.work.idle(timeoutMs);
    // Withdraw interest and let senders flush what is queued, then close links (FIN).
    if (this.cluster) {
      const clusterDrained = await this.cluster.drain(drained ? Math.min(timeoutMs, 2000) : 0);
      drained = drained && clusterDrained;
    }
    const err = new FailedPreconditionError(`node ${this.id} stopped before a reply arrived`);
    for (const cancel of this.pendingCancels) cancel(err);
    this.replies.closeAll(err);
    this.idempotency.close();
    this.router.closeAll(null);
    this.stateValue = 'stopped';
    // Drops still waiting for their rate-limited log line are logged now.
    this.dropLedger.flush();
    return { drained };
  }
}
