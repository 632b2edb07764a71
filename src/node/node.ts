/**
 * MeshNode: one meshwire node's core — validation, the local router, reply tokens,
 * the peer directory and the lifecycle (running -> draining -> stopped, a safe close:
 * stop accepting, drain, then close). The gRPC API calls into it; it knows nothing of gRPC.
 */
import { quote } from '../common';
import { LATENCY_TRACE, Stage, traceMark } from '../common';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { isIP } from 'node:net';
import type { Clock, HostPort, Interest, Message, Target } from '../common';
import {
  CancelledError,
  CidrSet,
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
import type {
  ClusterLogger,
  ClusterTarget,
  DeliveryScope,
  Dialer,
  InterestUpdate,
} from '../dispatch';
import { Cluster } from '../dispatch';
import type { PeerEntry } from '../peers';
import { DnsResolver, PeerDirectory, validatePeerId } from '../peers';
import {
  MessagingTelemetry,
  addSpanEvent,
  endSpan,
  messagingTracingEnabled,
  onProducerSpanEnd,
  producerSpanOf,
  setSpanAttributes,
  startReceiveSpan,
  startRespondSpan,
  traceSend,
} from '../telemetry';
import type { TransportLogger } from '../transport';
import type { RudpConnection } from '../transport';
import { DEVELOPMENT_SECRET, RudpSocket } from '../transport';
import type { NodeConfig } from './config';
import { assertClusterSecret, peerSeeds } from './config';
import type { ReplyResult } from './reply-table';
import { ReplyTable, replyTokenKey } from './reply-table';
import { InterestTable } from './interest-table';
import { Router } from './router';
import type { SlowConsumerPolicy, Subscription } from './subscription';
import { validateTopic } from './topics';

export type AckMode = 'ACCEPTED' | 'DELIVERED';

export interface SendOptions {
  /** @default 'ACCEPTED' */
  ack?: AckMode;
  /** Fail at once when the target peer is not resolved. @default false */
  failFast?: boolean;
  /** How long the message may wait for its peer, or for a DELIVERED ack. */
  timeoutMs?: number;
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
/** Same as the rpc envelope's limit, so whatever a node accepts can cross to a peer. */
export const MAX_HEADER_BYTES = 16 * 1024;
/** How long a reply forwarded to the node that issued its token may take to get there. */
const FORWARDED_REPLY_TIMEOUT_MS = 10_000;

/** Largest client-chosen message id, in UTF-8 bytes. */
export const MAX_MESSAGE_ID_BYTES = 256;
/** Largest header key, in UTF-8 bytes (values are bounded by MAX_HEADER_BYTES in total). */
export const MAX_HEADER_KEY_BYTES = 256;
/** Largest reply_to a Respond may carry (tokens this cluster issues are far shorter). */
export const MAX_REPLY_TO_BYTES = 512;
/** Patterns one Subscribe may carry. */
export const MAX_PATTERNS_PER_SUBSCRIPTION = 256;
/** Largest max_batch a subscriber may ask for. */
export const MAX_BATCH_LIMIT = 1024;
/** Largest buffer_size a subscriber may ask for. */
export const MAX_SUBSCRIBER_BUFFER = 65536;

export type NodeState = 'running' | 'draining' | 'stopped';

const EMPTY_PAYLOAD = Buffer.alloc(0);
const NO_HEADERS: Record<string, string> = Object.freeze({});
/** The two-digit base-36 numbers "00" to "zz", for message ids. */
const ID_DIGITS: readonly string[] = Array.from({ length: 36 * 36 }, (_, i) =>
  i.toString(36).padStart(2, '0')
);
/** What MeshNode.requestLocal cancels when a signal aborts, by signal. */
const abortWaiters = new WeakMap<AbortSignal, Set<() => void>>();

function checkIdBytes(id: string, what: string): void {
  const bytes = Buffer.byteLength(id);
  if (bytes > MAX_MESSAGE_ID_BYTES) {
    throw new InvalidArgumentError(
      `${what}: message.id ${quote(id)} is too long; at most ${MAX_MESSAGE_ID_BYTES} bytes are allowed`
    );
  }
}

/** Valid topics remembered to skip re-validation on the hot path. */
const VALID_TOPIC_CACHE = 10_000;

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
  /**
   * How peers are reached: 'udp' binds the reliable-UDP transport on peerListen at
   * start(); 'none' runs without a cluster; or a dialer plus a way to accept (tests).
   * @default 'udp'
   */
  transport?:
    | 'udp'
    | 'none'
    | {
        dial: Dialer;
        onAccept(accept: (d: Duplex) => void): void;
        close(): Promise<void>;
      };
  /** pino-compatible logger for the transport and cluster. */
  logger?: TransportLogger & ClusterLogger;
  /** DNS servers for peer names ("ip:port"), for tests with a local DNS server. */
  dnsServers?: string[];
  /** Re-resolve DNS peer names this often. @default 10000 */
  dnsIntervalMs?: number;
  /** Transport/mux keepalive for peer links (dead peers are noticed within about twice this). @default 1000 */
  peerPingIntervalMs?: number;
}

export class MeshNode {
  readonly id: string;
  readonly config: NodeConfig;
  readonly router = new Router();
  readonly replies: ReplyTable;
  readonly directory = new PeerDirectory();
  /** Messages that reached no subscriber, by reason (informational). */
  readonly drops = new DropCounter<NodeDropReason>();
  /** Message counters, open streams, request latency and per-peer transport (/metrics). */
  readonly telemetry = new MessagingTelemetry();
  private readonly clock: Clock;
  private readonly idPrefix = randomBytes(6).toString('base64url');
  private idCounter = 0;
  /** idCounter / ID_DIGITS.length of the last id made, and idPrefix with it in base 36. */
  private idHigh = -1;
  private idHead = '';
  private readonly selfAddress: string;
  private stateValue: NodeState = 'running';
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];
  private readonly pendingCancels = new Set<(err: Error) => void>();
  private readonly validTopics = new Set<string>();
  /** Peers' advertised subscription patterns. */
  readonly interest = new InterestTable();
  /** The cluster transport (after start(), unless transport is 'none'). */
  cluster: Cluster | undefined;
  private socket: RudpSocket | undefined;
  private transportClose: (() => Promise<void>) | undefined;
  private dns: DnsResolver | undefined;
  private readonly init: MeshNodeInit;
  /** Settles when connected peers have acknowledged the latest added interest. */
  private interestAcked: Promise<void> = Promise.resolve();
  /** Counters of closed subscriptions, so exported totals never go down. */
  deliveredByClosedSubscriptions = 0;
  readonly droppedByClosedSubscriptions: Record<string, number> = {};

  constructor(init: MeshNodeInit) {
    this.init = init;
    this.config = init.config;
    this.id = init.config.nodeId;
    this.clock = init.clock ?? systemClock;
    this.replies = new ReplyTable(
      this.clock,
      this.id,
      replyTokenKey(this.readClusterSecret() ?? DEVELOPMENT_SECRET)
    );
    this.selfAddress = formatHostPort(init.config.peerListen);
    for (const seed of peerSeeds(init.config)) {
      const existing = this.directory.get(seed.id);
      if (isIP(seed.host) !== 0) {
        const addrs = [...(existing?.addresses ?? []), { host: seed.host, port: seed.port }];
        this.directory.put(seed.id, addrs, seed.source);
      } else {
        // A name: the DNS resolver fills in the addresses (and keeps them fresh).
        this.directory.put(seed.id, existing?.addresses ?? [], seed.source, {
          name: seed.host,
          port: seed.port,
        });
      }
    }
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
   * The cluster secret (undefined without a secret file: the development secret). A file
   * that cannot be read here fails start() with the reason, where it is read again.
   */
  private readClusterSecret(): Buffer | undefined {
    if (!this.config.clusterSecretFile) return undefined;
    try {
      return readFileSync(this.config.clusterSecretFile);
    } catch {
      return undefined;
    }
  }

  /** Binds the peer transport and starts the cluster and DNS resolution. */
  async start(): Promise<void> {
    const t = this.init.transport ?? 'udp';
    if (t === 'none') return;
    let dial: Dialer;
    let onAccept: (accept: (d: Duplex) => void) => void;
    if (t === 'udp') {
      assertClusterSecret(this.config);
      const secret = this.config.clusterSecretFile
        ? readFileSync(this.config.clusterSecretFile)
        : undefined;
      const socket = await RudpSocket.bind({
        host: this.config.peerListen.host,
        port: this.config.peerListen.port,
        secret,
        congestion: this.config.congestionControl,
        aeadBackend: this.config.aeadBackend,
        maxDatagramSize: this.config.maxDatagramSize,
        udpDriver: this.config.udpDriver,
        idleTimeoutMs: 15_000,
        logger: this.init.logger,
      });
      this.socket = socket;
      const st = socket.stats();
      this.init.logger?.info(
        {
          peer_listen: formatHostPort(socket.address()),
          aead: st.aead,
          aead_backend: st.aeadBackend,
          udp_driver: st.udpDriver,
          congestion: this.config.congestionControl,
          max_datagram_size: this.config.maxDatagramSize,
        },
        'peer transport bound'
      );
      // Per-peer transport figures on /metrics while each connection is open.
      const watch = (conn: RudpConnection): RudpConnection => {
        const addr = formatHostPort(conn.remoteAddress);
        this.telemetry.transport.watchConnection(() => this.peerIdAt(addr), conn);
        return conn;
      };
      this.telemetry.transport.registerSocket(socket);
      dial = (addr, timeoutMs, signal) => socket.connect(addr, { timeoutMs, signal }).then(watch);
      onAccept = accept => socket.on('connection', (c: RudpConnection) => accept(watch(c)));
      this.transportClose = () => socket.close();
    } else {
      dial = t.dial;
      onAccept = accept => t.onAccept(accept);
      this.transportClose = () => t.close();
    }
    const ping = this.init.peerPingIntervalMs ?? 1000;
    const cluster = new Cluster({
      localId: this.id,
      log: this.init.logger,
      directory: this.directory,
      handler: this,
      dial,
      clock: this.clock,
      maxMessageBytes: this.config.maxMessageBytes,
      unresolvedBytes: this.config.unresolvedQueueBytes,
      addressTargets: {
        enabled: this.config.addressTargets,
        maxSenders: this.config.maxAddressSenders,
        idleTimeoutMs: this.config.addressSenderIdleMs,
        allowed: this.config.addressTargetCidrs && new CidrSet(this.config.addressTargetCidrs),
      },
      pingIntervalMs: ping,
      pongTimeoutMs: ping * 3,
    });
    this.cluster = cluster;
    onAccept(d => cluster.accept(d));
    this.dns = new DnsResolver(this.directory, {
      servers: this.init.dnsServers,
      intervalMs: this.init.dnsIntervalMs,
    });
    this.dns.start();
  }

  /**
   * Transport detail on the producer span of a message leaving for a peer (tracing
   * only): the peer's address, state, srtt and window at the hand-off, events when it
   * has to wait for resolution, a connection or the congestion window, and, at the end
   * of the span, the retransmissions its connection made meanwhile.
   */
  private annotateRemote(msg: Message, where: ClusterTarget, eventsOnly = false): void {
    // an unsampled message has no producer span: nothing to look up or build
    if (!this.cluster || producerSpanOf(msg) === undefined) return;
    const peerId = 'peerId' in where ? where.peerId : this.peerIdAt(where.address);
    const st = this.cluster.peerStatus(peerId);
    const entry = this.directory.get(peerId);
    const address =
      'address' in where
        ? where.address
        : entry?.addresses[0] && formatHostPort(entry.addresses[0]);
    const peer = this.telemetry.transport.peerSnapshot(peerId);
    const peerAttr = { 'meshwire.peer.id': peerId };
    if (!eventsOnly) {
      setSpanAttributes(msg, {
        'meshwire.peer.state': st.state,
        ...(address ? { 'network.peer.address': address } : {}),
        ...(peer?.srttMs !== undefined ? { 'meshwire.peer.srtt_ms': peer.srttMs } : {}),
        ...(peer?.cwnd !== undefined ? { 'meshwire.peer.cwnd': peer.cwnd } : {}),
      });
    }
    if (st.state === 'unresolved') {
      addSpanEvent(msg, 'waited_for_peer_resolution', peerAttr);
    } else if (st.state !== 'connected') {
      addSpanEvent(msg, 'waited_for_connection', { ...peerAttr, 'meshwire.peer.state': st.state });
    }
    if (peer?.cwnd !== undefined && (peer.bytesInFlight ?? 0) >= peer.cwnd) {
      addSpanEvent(msg, 'waited_for_send_window', {
        ...peerAttr,
        'meshwire.peer.bytes_in_flight': peer.bytesInFlight ?? 0,
        'meshwire.peer.cwnd': peer.cwnd,
      });
    }
    if (!eventsOnly) {
      const before = peer?.retransmissions ?? 0;
      onProducerSpanEnd(msg, span => {
        const after = this.telemetry.transport.peerSnapshot(peerId)?.retransmissions ?? before;
        if (after > before) {
          span.addEvent('retransmitted', {
            ...peerAttr,
            'meshwire.retransmissions': after - before,
          });
        }
      });
    }
  }

  /** The id of the peer at UDP address `addr` ("host:port"), else the address itself. */
  private peerIdAt(addr: string): string {
    for (const e of this.directory.list()) {
      if (e.addresses.some(a => formatHostPort(a) === addr)) return e.id;
    }
    return addr;
  }

  /** The bound UDP peer address (resolved when peerListen has port 0). */
  get peerAddress(): HostPort {
    return this.socket ? this.socket.address() : this.config.peerListen;
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
        `${what}: message is missing: set message.topic (and message.payload, which may be empty)`
      );
    }
    if ((what !== 'reply' || message.topic) && !this.validTopics.has(message.topic)) {
      validateTopic(message.topic);
      // Publishers reuse few topics: remember valid ones (bounded) to skip re-validation.
      if (this.validTopics.size >= VALID_TOPIC_CACHE) this.validTopics.clear();
      this.validTopics.add(message.topic);
    }
    const size = message.payload?.length ?? 0;
    if (size > this.config.maxMessageBytes) {
      throw new InvalidArgumentError(
        `${what}: payload is ${size} bytes; the maximum is ${this.config.maxMessageBytes} (maxMessageBytes)`
      );
    }
    // A UTF-16 unit is at most 3 UTF-8 bytes: count bytes only for ids that may be too long.
    if (message.id && message.id.length * 3 > MAX_MESSAGE_ID_BYTES) checkIdBytes(message.id, what);
    // Headers are read, never changed in place (trace context goes into a copy), so a
    // decoder's shared frozen empty map is fine as it is.
    const headers = message.headers ?? NO_HEADERS;
    let units = 0;
    let count = 0;
    for (const k in headers) {
      count++;
      if (k.length * 3 > MAX_HEADER_KEY_BYTES && Buffer.byteLength(k) > MAX_HEADER_KEY_BYTES) {
        throw new InvalidArgumentError(
          `${what}: header key ${quote(k)} is too long; keys may have at most ${MAX_HEADER_KEY_BYTES} bytes`
        );
      }
      units += k.length + (headers[k]?.length ?? 0);
    }
    // Exact UTF-8 bytes only when the UTF-16 length allows going over (what the wire checks).
    let headerBytes = units;
    if (units * 3 > MAX_HEADER_BYTES) {
      headerBytes = 0;
      for (const k in headers)
        headerBytes += Buffer.byteLength(k) + Buffer.byteLength(headers[k] ?? '');
    }
    if (count > MAX_HEADERS || headerBytes > MAX_HEADER_BYTES) {
      throw new InvalidArgumentError(
        `${what}: ${count} headers of ${headerBytes} bytes; at most ${MAX_HEADERS} headers and ${MAX_HEADER_BYTES} bytes are allowed`
      );
    }
    if (!message.id) {
      // `${idPrefix}${counter.toString(36)}`, with toString(36) (a runtime call, 30 ns a
      // message) once per 1296 ids: the last two base-36 digits come from a table.
      const n = this.idCounter++;
      if (n < ID_DIGITS.length) message.id = `${this.idPrefix}${n.toString(36)}`;
      else {
        const high = Math.floor(n / ID_DIGITS.length);
        if (high !== this.idHigh) {
          this.idHigh = high;
          this.idHead = `${this.idPrefix}${high.toString(36)}`;
        }
        message.id = this.idHead + ID_DIGITS[n - high * ID_DIGITS.length];
      }
    }
    // No headers: one shared frozen map instead of the message's own empty one, which would
    // live as long as the message waits in subscriber buffers (one GC survivor fewer per
    // message). Headers are never changed in place (trace context goes into a copy).
    message.headers = count === 0 ? NO_HEADERS : headers;
    // protobufjs leaves an absent bytes field as its prototype's default (an empty array)
    if (!Buffer.isBuffer(message.payload)) {
      const p = message.payload as Uint8Array | undefined;
      message.payload =
        p && p.length > 0 ? Buffer.from(p.buffer, p.byteOffset, p.length) : EMPTY_PAYLOAD;
    }
    return message;
  }

  private checkRunning(): void {
    if (this.stateValue !== 'running') {
      throw new UnavailableError(
        `node ${this.id} is shutting down and accepts no new work; retry on another node`
      );
    }
  }

  /** Where a target points: this node, a remote node, or by interest (no target). */
  private resolveTarget(target: Target): 'local' | 'interest' | ClusterTarget {
    if (target === undefined) return 'interest';
    if ('peerId' in target) {
      validatePeerId(target.peerId);
      return target.peerId === this.id ? 'local' : { peerId: target.peerId };
    }
    const addr = formatHostPort(parseHostPort(target.address, 'target address'));
    return addr === this.selfAddress ? 'local' : { address: addr };
  }

  private requireCluster(target: ClusterTarget): Cluster {
    if (this.cluster) return this.cluster;
    const name =
      'peerId' in target ? `peer ${quote(target.peerId)}` : `address ${quote(target.address)}`;
    throw new UnavailableError(
      `${name} is unreachable: node ${this.id} runs without a cluster transport`
    );
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight++;
    // then(ok, fail), not finally(): two microtask hops fewer on every request's answer
    const done = (): void => {
      this.inFlight--;
      if (this.inFlight === 0) this.wakeIdle();
    };
    return p.then(
      v => {
        done();
        return v;
      },
      (err: unknown) => {
        done();
        throw err;
      }
    );
  }

  /**
   * Delivers a message. Local delivery and ACCEPTED hand-offs complete synchronously
   * (errors are thrown); DELIVERED to remote nodes returns a promise of the total count.
   */
  send(message: Message, target: Target, opts: SendOptions = {}): SendResult | Promise<SendResult> {
    this.checkRunning();
    const msg = this.prepare(message, 'send');
    this.telemetry.sentMessages++;
    if (!messagingTracingEnabled()) return this.sendPrepared(msg, target, opts);
    return traceSend(msg, { localPeer: this.id, target }, () =>
      this.sendPrepared(msg, target, opts)
    );
  }

  /** send() after validation, inside the producer span when tracing. */
  private sendPrepared(
    msg: Message,
    target: Target,
    opts: SendOptions
  ): SendResult | Promise<SendResult> {
    const where = this.resolveTarget(target);
    const wantCount = opts.ack === 'DELIVERED';
    if (where === 'local') {
      const delivered = this.publishLocal(msg);
      if (delivered === 0) this.drops.add('no_subscribers');
      return { id: msg.id, delivered };
    }
    if (where !== 'interest') {
      const cluster = this.requireCluster(where);
      this.annotateRemote(msg, where);
      if (!wantCount) {
        cluster.enqueue(where, msg, { timeoutMs: opts.timeoutMs, failFast: opts.failFast });
        return { id: msg.id, delivered: 0 };
      }
      return this.track(
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
    return this.track(
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
  private publishLocal(msg: Message): number {
    this.telemetry.receivedLocal++;
    // Tracing off: not even the span's init object, once a message.
    if (!messagingTracingEnabled()) return this.router.publish(msg, this.id);
    const rx = startReceiveSpan(msg, { localPeer: this.id, sourcePeer: this.id });
    if (!rx) return this.router.publish(msg, this.id);
    const delivered = this.router.publish(rx.message as Message, this.id);
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
      let where = this.resolveTarget(target);
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
          return this.track(this.requestLocal(msg, timeoutMs, opts.signal));
        }
        return this.track(
          traceSend(msg, span, () => this.requestLocal(msg, timeoutMs, opts.signal))
        );
      }
      const cluster = this.requireCluster(where);
      return this.track(
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
    let onAbort: (() => void) | undefined;
    if (signal) {
      // A peer's request aborts when its deadline passes (rpc HandlerContext): that is a
      // timeout, not a cancel, whichever of the two timers fires first.
      onAbort = () =>
        pending.cancel(
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
    }
    const cleanup = (): void => {
      this.pendingCancels.delete(pending.cancel);
      if (onAbort && signal) abortWaiters.get(signal)?.delete(onAbort);
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
    if (!replyTo) {
      throw new InvalidArgumentError(
        'respond: reply_to is missing: pass the Delivery.reply_to of the request'
      );
    }
    if (replyTo.length > MAX_REPLY_TO_BYTES) {
      throw new InvalidArgumentError(
        `respond: reply_to is ${Buffer.byteLength(replyTo)} bytes; reply tokens have at most ${MAX_REPLY_TO_BYTES}: pass the Delivery.reply_to of the request unchanged`
      );
    }
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
  private resolveReply(opaque: string, reply: Message): void {
    const result = this.replies.resolve(opaque, { reply, responderPeer: this.id });
    if (LATENCY_TRACE) traceMark(Stage.REPLY_RESOLVED);
    if (result === true) return;
    const why =
      result === 'unknown'
        ? `is unknown to node ${this.id} (issued before it restarted, or long finished)`
        : result === 'already answered'
          ? 'was already answered (a request takes the first reply)'
          : result === 'node stopped'
            ? `ended when node ${this.id} stopped`
            : `is gone: the requester ${result}`;
    throw new NotFoundError(`respond: the request this reply_to names ${why}`);
  }

  // --- ClusterHandler: what peers ask of this node -----------------------------------

  onMessage(message: Message, origin: string, scope: DeliveryScope): number {
    if (this.stateValue === 'stopped') return 0;
    this.telemetry.receivedFromPeers++;
    const rx = startReceiveSpan(message, { localPeer: this.id, sourcePeer: origin });
    const m = rx ? (rx.message as Message) : message;
    let delivered = 0;
    if (scope.allGroups) delivered += this.router.publish(m, origin);
    else {
      if (scope.plain) delivered += this.router.publish(m, origin, true);
      for (const g of scope.groups) {
        if (this.router.publishToGroup(m, origin, g)) delivered++;
      }
    }
    rx?.end(delivered);
    return delivered;
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
    return this.track(this.requestLocal(message, timeoutMs, signal, origin));
  }

  onRespond(token: string, reply: Message, _responderPeer: string): void {
    const parsed = this.replies.parse(token);
    if (!parsed || parsed.issuer !== this.id) {
      throw new InvalidArgumentError(
        `respond: reply_to was not issued by node ${this.id}, or not by this cluster`
      );
    }
    this.resolveReply(parsed.opaque, reply);
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
    if (!opts.patterns || opts.patterns.length === 0) {
      throw new InvalidArgumentError(
        'subscribe: topics is empty: give at least one pattern, e.g. "orders.>"'
      );
    }
    if (opts.patterns.length > MAX_PATTERNS_PER_SUBSCRIPTION) {
      throw new InvalidArgumentError(
        `subscribe: ${opts.patterns.length} topics; at most ${MAX_PATTERNS_PER_SUBSCRIPTION} patterns per subscription`
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
        `subscribe: queue_group ${quote(opts.queueGroup)} is not valid: use 1 to 128 characters of A-Z a-z 0-9 _ . -`
      );
    }
    const sub = this.router.subscribe({
      patterns: opts.patterns,
      queueGroup: opts.queueGroup,
      maxBatch,
      policy: opts.policy,
      bufferSize,
    });
    // Router.subscribe announced any new pattern synchronously: wait for that announcement.
    sub.ready = this.interestAcked;
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
      addresses: [formatHostPort(this.peerAddress)],
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
    const c = this.cluster?.peerStatus(e.id);
    return {
      id: e.id,
      addresses: e.addresses.map(formatHostPort),
      source: e.source,
      state: c?.state ?? (e.addresses.length > 0 ? 'idle' : 'unresolved'),
      srttUs: c?.srttUs ?? 0,
      inFlight: c?.inFlight ?? 0,
      queueDepth: c?.queueDepth ?? 0,
      lastError: c?.lastError ?? '',
      lastSeenUnixMs: c?.lastSeenUnixMs ?? 0,
    };
  }

  /** Inserts or replaces a peer (Peers.PutPeer). */
  putPeer(id: string, addresses: string[]): PeerStatus {
    validatePeerId(id);
    if (id === this.id) {
      throw new InvalidArgumentError(`peer id ${quote(id)} is this node's own id`);
    }
    if (!addresses || addresses.length === 0) {
      throw new InvalidArgumentError(
        `peer ${quote(id)}: addresses is empty: give at least one "host:port"`
      );
    }
    const parsed: HostPort[] = addresses.map(a => parseHostPort(a, `peer ${quote(id)} address`));
    const names = parsed.filter(a => isIP(a.host) === 0);
    if (names.length > 0) {
      if (parsed.length > 1) {
        throw new InvalidArgumentError(
          `peer ${quote(id)}: give either one DNS name or IP addresses, not both`
        );
      }
      return this.peerStatus(
        this.directory.put(id, [], 'api', { name: names[0].host, port: names[0].port })
      );
    }
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
    // Withdraw interest and let senders flush what is queued, then close links (FIN).
    if (this.cluster) {
      const clusterDrained = await this.cluster.drain(drained ? Math.min(timeoutMs, 2000) : 0);
      drained = drained && clusterDrained;
    }
    this.dns?.stop();
    const err = new FailedPreconditionError(`node ${this.id} stopped before a reply arrived`);
    for (const cancel of this.pendingCancels) cancel(err);
    this.replies.closeAll(err);
    this.router.closeAll(null);
    this.stateValue = 'stopped';
    await this.transportClose?.().catch(() => undefined);
    return { drained };
  }
}
