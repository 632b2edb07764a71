/**
 * The cluster side of a node: routes work to peer ids (through the SenderPool's
 * per-address PeerSenders, or a bounded unresolved queue while a peer has no address) and
 * to `target.address` (the pool checks, bounds and retires those senders), accepts the
 * inbound links peers opened to us, suppresses duplicates and carries interest
 * advertisements. The node layer above decides what goes where (topics,
 * queue groups); this layer moves it and reports how it went.
 */
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { Clock, HostPort, Interest, Message } from '../common';
import { LATENCY_TRACE, Stage, traceMark } from '../common';
import { DropCounter, DropLedger, UnavailableError } from '../common';
import type { PeerDirectory, PeerEntry } from '../peers';
import type { ClusterLogger, Dialer } from './peer-sender';
import { PeerSender } from './peer-sender';
import type { LinkHandler, PeerLink } from './peer-link';
import { InboundLinks } from './inbound-links';
import type { SenderItem } from './sender-item';
import { messageBytes } from './sender-item';
import type { AddressSenderRetireReason, AddressTargetLimits } from './sender-pool';
import { SenderPool } from './sender-pool';
import { UnresolvedQueues } from './unresolved-queues';
import type { DeliveryScope, Hello, InterestUpdate, PeerCallOp } from './wire';
import { ALL_SUBSCRIBERS } from './wire';
import { DedupWindow } from './dedup';

const noop = (): void => undefined;

/** What the node above provides to the cluster. */
export interface ClusterHandler {
  onMessage(message: Message, origin: string, scope: DeliveryScope): number;
  onRequest(
    message: Message,
    origin: string,
    timeoutMs: number,
    signal: AbortSignal
  ): Promise<{ reply: Message; responderPeer: string }>;
  /** A reply handed over by a peer for a request whose token this node issued. */
  onRespond(token: string, reply: Message, responderPeer: string): void;
  onPeerInterest(peerId: string, update: InterestUpdate): void;
  /** A node-layer call from a peer (idempotency claims): resolves with the answer body. */
  onPeerCall(op: PeerCallOp, body: Buffer, peerId: string, timeoutMs: number): Promise<Buffer>;
  onPeerGone(peerId: string): void;
  localInterests(): Interest[];
}

export type ClusterTarget = { peerId: string } | { address: string };

export interface ClusterInit {
  localId: string;
  log?: ClusterLogger;
  /**
   * Where the cluster, its senders and links record drops (the node's ledger).
   * @default a ledger of its own
   */
  drops?: DropLedger;
  directory: PeerDirectory;
  handler: ClusterHandler;
  /** Dials a peer address (RudpSocket.connect in production). */
  dial: Dialer;
  clock: Clock;
  maxMessageBytes: number;
  /** Messages waiting per unresolved peer at most. @default 1000 */
  unresolvedCapacity?: number;
  /** Bytes waiting per unresolved peer at most. @default 16 MiB */
  unresolvedBytes?: number;
  /** How long a fire-and-forget message may wait for its peer. @default 30000 */
  messageTtlMs?: number;
  /** Sender queue per address. @default 10000 */
  senderQueueCapacity?: number;
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  connectTimeoutMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Sequence numbers remembered per origin for duplicate suppression. @default 16384 */
  dedupWindow?: number;
  /** Bounds on senders for address targets. @default DEFAULT_ADDRESS_TARGET_LIMITS */
  addressTargets?: Partial<AddressTargetLimits>;
}

/** The ledger components whose drops dropCounts() reports: the cluster and its senders. */
export const CLUSTER_DROP_COMPONENTS = ['cluster', 'peer_sender'] as const;

export type ClusterDropReason =
  | 'unresolved_queue_full'
  | 'unresolved_ttl_expired'
  | 'duplicate'
  | 'unknown_peer'
  /** target.address refused: maxAddressSenders reached. */
  | 'address_senders_full'
  /** target.address refused: outside addressTargetCidrs. */
  | 'address_not_allowed'
  /** target.address refused: addressTargets is false. */
  | 'address_targets_disabled';

/** Per-peer status for ListPeers. */
export interface ClusterPeerStatus {
  state: string;
  srttUs: number;
  inFlight: number;
  queueDepth: number;
  lastError: string;
  lastSeenUnixMs: number;
}

export class Cluster implements LinkHandler {
  readonly localId: string;
  /** This process run: peers key duplicate suppression on node id plus instance. */
  readonly instanceId = randomBytes(9).toString('base64url');
  /** The next message's sequence number (unique per instance, never reused). */
  private nextSeq = 0;
  /** Every drop of the cluster, its senders and links (totals outlive the senders). */
  private readonly ledger: DropLedger;
  readonly drops: DropCounter<ClusterDropReason>;
  private readonly init: ClusterInit;
  private readonly directory: PeerDirectory;
  /** Every outbound sender: directory peers' and address targets'. */
  private readonly pool: SenderPool;
  private readonly unresolved: UnresolvedQueues;
  private readonly inbound: InboundLinks;
  private readonly dedup: DedupWindow;
  private closed = false;
  private readonly onPut = (entry: PeerEntry): void => this.syncSenders(entry);
  private readonly onDelete = (entry: PeerEntry): void => this.removePeer(entry.id);

  constructor(init: ClusterInit) {
    this.init = init;
    this.localId = init.localId;
    this.directory = init.directory;
    this.dedup = new DedupWindow(init.dedupWindow ?? 16_384);
    this.ledger = init.drops ?? new DropLedger({ clock: init.clock });
    this.drops = new DropCounter('cluster', this.ledger);
    this.unresolved = new UnresolvedQueues({
      clock: init.clock,
      capacity: init.unresolvedCapacity,
      bytes: init.unresolvedBytes,
      drops: this.drops,
    });
    this.pool = new SenderPool({
      localId: this.localId,
      clock: init.clock,
      limits: init.addressTargets,
      drops: this.drops,
      create: (address, expectedId, retryForever) =>
        this.createSender(address, expectedId, retryForever),
    });
    this.inbound = new InboundLinks({
      link: {
        handler: this,
        clock: init.clock,
        maxMessageBytes: init.maxMessageBytes,
        pingIntervalMs: init.pingIntervalMs,
        pongTimeoutMs: init.pongTimeoutMs,
        drops: this.ledger,
      },
      log: init.log,
      onPeerGone: peerId => init.handler.onPeerGone(peerId),
    });
    this.directory.on('put', this.onPut);
    this.directory.on('delete', this.onDelete);
    for (const e of this.directory.list()) this.syncSenders(e);
  }

  // --- inbound -------------------------------------------------------------------

  /** Takes an accepted connection (RudpSocket 'connection'). */
  accept(duplex: Duplex): PeerLink {
    const link = this.inbound.accept(duplex);
    if (this.closed) link.close();
    return link;
  }

  onHello(link: PeerLink, hello: Hello): void {
    if (this.closed) throw new UnavailableError(`node ${this.localId} is shutting down`);
    this.inbound.identified(link, hello.nodeId);
    // A peer we did not know dialled us: learn its address (its socket is its listener),
    // so our sends and interest reach it too.
    if (!this.directory.get(hello.nodeId)) {
      const r = (link.duplex as Duplex & { remoteAddress?: HostPort }).remoteAddress;
      if (r) {
        try {
          this.directory.put(hello.nodeId, [r], 'learned');
        } catch {
          // directory full or bad id: we still serve the link, we just do not dial back
        }
      }
    }
  }

  onInterest(link: PeerLink, update: InterestUpdate): void {
    this.init.handler.onPeerInterest(link.peerId, update);
  }

  onMessage(
    message: Message,
    origin: string,
    scope: DeliveryScope,
    seq: number,
    dedupOrigin: string
  ): number {
    if (seq >= 0 && !this.dedup.firstSeen(dedupOrigin, seq)) {
      this.drops.add('duplicate');
      return 0;
    }
    return this.init.handler.onMessage(message, origin, scope);
  }

  onRespond(token: string, reply: Message, responderPeer: string): void {
    this.init.handler.onRespond(token, reply, responderPeer);
  }

  /** Duplicate-suppression memory (for /metrics and tests). */
  dedupStats(): { origins: number; bytes: number } {
    return { origins: this.dedup.originCount, bytes: this.dedup.bytes };
  }

  onRequest(
    message: Message,
    origin: string,
    timeoutMs: number,
    signal: AbortSignal
  ): Promise<{ reply: Message; responderPeer: string }> {
    return this.init.handler.onRequest(message, origin, timeoutMs, signal);
  }

  onPeerCall(op: PeerCallOp, body: Buffer, peerId: string, timeoutMs: number): Promise<Buffer> {
    return this.init.handler.onPeerCall(op, body, peerId, timeoutMs);
  }

  // --- senders ---------------------------------------------------------------------

  /** A new sender (SenderPool calls this: the pool decides when). */
  private createSender(address: HostPort, expectedId: string, retryForever: boolean): PeerSender {
    return new PeerSender({
      address,
      expectedId,
      dial: this.init.dial,
      handler: this,
      clock: this.init.clock,
      maxMessageBytes: this.init.maxMessageBytes,
      queueCapacity: this.init.senderQueueCapacity,
      pingIntervalMs: this.init.pingIntervalMs,
      pongTimeoutMs: this.init.pongTimeoutMs,
      connectTimeoutMs: this.init.connectTimeoutMs,
      backoffBaseMs: this.init.backoffBaseMs,
      backoffMaxMs: this.init.backoffMaxMs,
      retryForever,
      log: this.init.log,
      drops: this.ledger,
      onLinkUp: (_sender, link) => {
        void link.sendInterest({
          snapshot: true,
          add: this.init.handler.localInterests(),
          remove: [],
        });
      },
    });
  }

  /** Keeps one sender per address of a directory entry; flushes its unresolved queue. */
  private syncSenders(entry: PeerEntry): void {
    if (this.closed || entry.id === this.localId) return;
    for (const sender of this.pool.syncPeer(entry.id, entry.addresses)) sender.start();
    if (entry.addresses.length > 0) {
      for (const item of this.unresolved.take(entry.id)) this.submitToPeer(entry, item);
    }
  }

  private removePeer(id: string): void {
    this.pool.removePeer(id);
    this.unresolved.fail(id, new UnavailableError(`peer "${id}" was removed from the directory`));
  }

  /** The healthiest sender of a peer (connected first, fewer failures, lower RTT). */
  private bestSender(entry: PeerEntry): PeerSender | undefined {
    // The list is kept by syncSenders: no address formatting per message.
    const list = this.pool.peerSenders(entry.id) ?? this.pool.syncPeer(entry.id, entry.addresses);
    let best: PeerSender | undefined;
    for (const s of list) {
      if (!best || s.score() < best.score()) best = s;
    }
    return best;
  }

  private submitToPeer(entry: PeerEntry, item: SenderItem): void {
    const sender = this.bestSender(entry);
    if (!sender) throw new UnavailableError(`peer "${entry.id}" has no address`);
    sender.submit(item);
  }

  /** Live senders for address targets outside the directory (a metric). */
  get addressSenderCount(): number {
    return this.pool.addressSenderCount;
  }

  /** Address senders retired, by reason (exported as a counter). */
  get addressSenderRetirements(): DropCounter<AddressSenderRetireReason> {
    return this.pool.retirements;
  }

  /** Routes an item to a peer id or address; throws for immediate refusals. */
  private route(target: ClusterTarget, item: SenderItem, failFast: boolean): void {
    if (this.closed) throw new UnavailableError(`node ${this.localId} is shutting down`);
    if ('address' in target) {
      this.pool.forAddress(target.address).submit(item);
      return;
    }
    const entry = this.directory.get(target.peerId);
    if (entry && entry.addresses.length > 0) {
      this.submitToPeer(entry, item);
      return;
    }
    if (!entry) {
      this.drops.add('unknown_peer');
      throw new UnavailableError(
        `peer "${target.peerId}" is unknown to node ${this.localId}: add it with PutPeer, --peers or --peer-dns`
      );
    }
    if (failFast) {
      this.drops.add('unknown_peer');
      throw new UnavailableError(
        `peer "${target.peerId}" is not resolved yet${entry.dnsName ? ` (DNS name ${entry.dnsName})` : ''}; retry, or send without fail_fast to wait`
      );
    }
    this.unresolved.enqueue(target.peerId, item);
  }

  /**
   * Sends a message to one peer. Resolves with the peer's DELIVERED count when
   * `wantCount`, else once handed over (0).
   */
  send(
    target: ClusterTarget,
    message: Message,
    opts: {
      scope?: DeliveryScope;
      wantCount?: boolean;
      timeoutMs?: number;
      failFast?: boolean;
    } = {}
  ): Promise<number> {
    const ttl = opts.timeoutMs ?? this.init.messageTtlMs ?? 30_000;
    return new Promise<number>((resolve, reject) => {
      this.route(
        target,
        {
          kind: 'message',
          message,
          scope: opts.scope ?? ALL_SUBSCRIBERS,
          wantCount: opts.wantCount ?? false,
          seq: this.nextSeq++,
          expiresAt: this.init.clock.now() + ttl,
          bytes: messageBytes(message),
          resolve,
          reject,
        },
        opts.failFast ?? false
      );
    });
  }

  /**
   * Fire-and-forget hand-off (ACCEPTED): throws at once when refused (queue full,
   * unknown peer with failFast, shutting down); later failures are counted drops.
   */
  enqueue(
    target: ClusterTarget,
    message: Message,
    opts: { scope?: DeliveryScope; timeoutMs?: number; failFast?: boolean } = {}
  ): void {
    const ttl = opts.timeoutMs ?? this.init.messageTtlMs ?? 30_000;
    this.route(
      target,
      {
        kind: 'message',
        message,
        scope: opts.scope ?? ALL_SUBSCRIBERS,
        wantCount: false,
        seq: this.nextSeq++,
        expiresAt: this.init.clock.now() + ttl,
        bytes: messageBytes(message),
        resolve: noop,
        // Expiry and unreachable peers are counted where they happen (sender, queue).
        reject: noop,
      },
      opts.failFast ?? false
    );
  }

  /** Sends a request to one peer's responders. */
  request(
    target: ClusterTarget,
    message: Message,
    opts: { timeoutMs: number; failFast?: boolean; signal?: AbortSignal }
  ): Promise<{ reply: Message; responderPeer: string }> {
    if (LATENCY_TRACE) traceMark(Stage.DISPATCH_SEND);
    return new Promise((resolve, reject) => {
      this.route(
        target,
        {
          kind: 'request',
          message,
          expiresAt: this.init.clock.now() + opts.timeoutMs,
          bytes: messageBytes(message),
          signal: opts.signal,
          resolve,
          reject,
        },
        opts.failFast ?? false
      );
    });
  }

  /**
   * Hands a client's reply to the peer that issued its reply token. Resolves once that
   * peer completed the request; rejects with its answer (NOT_FOUND, saying why) or when
   * it cannot be reached.
   */
  respond(
    peerId: string,
    token: string,
    reply: Message,
    responderPeer: string,
    timeoutMs: number
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.route(
        { peerId },
        {
          kind: 'respond',
          token,
          message: reply,
          responderPeer,
          expiresAt: this.init.clock.now() + timeoutMs,
          bytes: messageBytes(reply) + token.length,
          resolve,
          reject,
        },
        true
      );
    });
  }

  /**
   * A node-layer call (PeerCallOp) to a peer; resolves with its answer body. Fails fast
   * (UNAVAILABLE) when the peer is unknown or not resolved: the caller decides what a
   * missing answer means.
   */
  call(peerId: string, op: PeerCallOp, body: Buffer, timeoutMs: number): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      this.route(
        { peerId },
        {
          kind: 'call',
          op,
          body,
          expiresAt: this.init.clock.now() + timeoutMs,
          bytes: 64 + body.length,
          resolve,
          reject,
        },
        true
      );
    });
  }

  /** Sends an interest delta to every connected peer. */
  broadcastInterest(update: InterestUpdate): Promise<void> {
    const acks: Array<Promise<void>> = [];
    for (const s of this.pool.senders()) if (s.link) acks.push(s.link.sendInterest(update));
    return Promise.all(acks).then(() => undefined);
  }

  /** Connection figures of a peer for ListPeers. */
  peerStatus(id: string): ClusterPeerStatus {
    const entry = this.directory.get(id);
    let state = entry && entry.addresses.length > 0 ? 'idle' : 'unresolved';
    let srttUs = 0;
    let inFlight = 0;
    let queueDepth = this.unresolved.depth(id);
    let lastError = '';
    let lastSeen = 0;
    const rank = ['closed', 'idle', 'backoff', 'connecting', 'connected'];
    // The peer's own senders, not a scan of the pool: ListPeers and the per-peer queue
    // gauges call this for every peer, which made them O(N^2) in a full mesh.
    for (const s of this.pool.peerSenders(id) ?? []) {
      if (s.expectedId !== id) continue;
      if (rank.indexOf(s.state) > rank.indexOf(state)) state = s.state;
      if (s.state === 'backoff' && state === 'backoff') state = 'failed';
      srttUs = srttUs || s.srttUs;
      inFlight += s.link?.inFlight ?? 0;
      queueDepth += s.depth;
      lastError = lastError || s.lastError;
      lastSeen = Math.max(lastSeen, s.link?.lastSeenUnixMs ?? 0);
    }
    lastSeen = Math.max(lastSeen, this.inbound.lastSeenUnixMs(id));
    return { state, srttUs, inFlight, queueDepth, lastError, lastSeenUnixMs: lastSeen };
  }

  /** Drops of the cluster and of every sender it had (live or retired), by reason. */
  dropCounts(): Record<string, number> {
    return this.ledger.snapshot(CLUSTER_DROP_COMPONENTS);
  }

  /** Live links (outbound and inbound), for transport metrics. */
  links(): PeerLink[] {
    const out: PeerLink[] = this.inbound.links();
    for (const s of this.pool.senders()) if (s.link) out.push(s.link);
    return out;
  }

  /**
   * Safe close: withdraw interest, let senders finish their queues up to `timeoutMs`,
   * then close every link gracefully. Idempotent.
   */
  async drain(timeoutMs: number): Promise<boolean> {
    if (this.closed) return true;
    void this.broadcastInterest({ snapshot: true, add: [], remove: [] });
    const results = await Promise.all([...this.pool.senders()].map(s => s.drain(timeoutMs)));
    this.close();
    return results.every(Boolean);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.directory.off('put', this.onPut);
    this.directory.off('delete', this.onDelete);
    this.pool.close();
    this.unresolved.failAll(new UnavailableError(`node ${this.localId} is shutting down`));
    this.inbound.closeAll();
  }
}
