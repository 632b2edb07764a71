/**
 * The cluster side of a node: one UDP socket (RudpSocket), a DirectSender that maps
 * peer ids to per-address PeerSenders with a bounded unresolved queue, the
 * inbound links peers opened to us, duplicate suppression, and interest advertisement.
 * Senders for `target.address` outside the peer directory are bounded: allowed CIDRs, a
 * cap, retirement after an idle timeout, and no retrying once their queue is empty.
 * The node layer above decides what goes where (topics, queue groups); this layer moves
 * it and reports how it went.
 */
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Clock, HostPort, Interest, Message, Timer } from '../common';
import { LATENCY_TRACE, Stage, traceMark } from '../common';
import {
  BoundedRing,
  CidrSet,
  DeadlineExceededError,
  DropCounter,
  FailedPreconditionError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnavailableError,
  formatHostPort,
  parseHostPort,
} from '../common';
import type { PeerDirectory, PeerEntry } from '../peers';
import type { ClusterLogger, Dialer, SenderItem } from './peer-sender';
import { PeerSender, removeExpired } from './peer-sender';
import type { LinkHandler } from './peer-link';
import { PeerLink } from './peer-link';
import type { DeliveryScope, Hello, InterestUpdate } from './wire';
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
  onPeerGone(peerId: string): void;
  localInterests(): Interest[];
}

export type ClusterTarget = { peerId: string } | { address: string };

/**
 * Limits on senders for `target.address` outside the peer directory (config keys
 * addressTargets, maxAddressSenders, addressSenderIdleMs, addressTargetCidrs in
 * src/app/config-keys.ts).
 */
export interface AddressTargetLimits {
  /** False: every `target.address` is refused with FAILED_PRECONDITION. @default true */
  enabled: boolean;
  /** Address senders at most; past it RESOURCE_EXHAUSTED. @default 256 */
  maxSenders: number;
  /** An address sender unused this long is retired. @default 60000 */
  idleTimeoutMs: number;
  /** Addresses allowed; outside them PERMISSION_DENIED. @default any (0.0.0.0/0, ::/0) */
  allowed: CidrSet;
}

export const DEFAULT_ADDRESS_TARGET_LIMITS: AddressTargetLimits = {
  enabled: true,
  maxSenders: 256,
  idleTimeoutMs: 60_000,
  allowed: new CidrSet([
    { address: '0.0.0.0', prefix: 0, family: 4 },
    { address: '::', prefix: 0, family: 6 },
  ]),
};

export type AddressSenderRetireReason = 'idle';

interface AddressSenderUse {
  sender: PeerSender;
  lastUsedAt: number;
}

export interface ClusterInit {
  localId: string;
  log?: ClusterLogger;
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

/**
 * Bytes a queued message holds: the payload, the client's strings and the framing. Queue
 * limits count these, so nothing a client sends sits in a queue unaccounted for.
 */
function messageBytes(message: Message): number {
  let n = 64 + message.payload.length + message.id.length + message.topic.length;
  for (const k in message.headers) n += k.length + (message.headers[k]?.length ?? 0);
  return n;
}

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

interface Unresolved {
  items: BoundedRing<SenderItem>;
  bytes: number;
  timer: Timer | undefined;
}

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
  readonly drops = new DropCounter<ClusterDropReason>();
  /** Drops counted by senders that were closed, so exported totals never go down. */
  private readonly closedSenderDrops: Record<string, number> = {};
  private readonly init: ClusterInit;
  private readonly directory: PeerDirectory;
  /** Senders by canonical address. */
  private readonly senders = new Map<string, PeerSender>();
  /** Each directory peer's senders, one per address (kept in step with the directory). */
  private readonly sendersByPeer = new Map<string, PeerSender[]>();
  private readonly unresolved = new Map<string, Unresolved>();
  /** Inbound links by peer id (a peer may have several during reconnects). */
  private readonly inbound = new Map<string, Set<PeerLink>>();
  private readonly allInbound = new Set<PeerLink>();
  private readonly dedup: DedupWindow;
  /** Senders for address targets outside the directory (a subset of `senders`). */
  private readonly addressSenders = new Map<string, AddressSenderUse>();
  private addressSweep: Timer | undefined;
  private readonly addressLimits: AddressTargetLimits;
  /** Address senders retired, by reason (exported as a counter). */
  readonly addressSenderRetirements = new DropCounter<AddressSenderRetireReason>();
  private closed = false;
  private readonly onPut = (entry: PeerEntry): void => this.syncSenders(entry);
  private readonly onDelete = (entry: PeerEntry): void => this.removePeer(entry.id);

  constructor(init: ClusterInit) {
    this.init = init;
    this.localId = init.localId;
    this.directory = init.directory;
    this.dedup = new DedupWindow(init.dedupWindow ?? 16_384);
    const a = init.addressTargets ?? {};
    const d = DEFAULT_ADDRESS_TARGET_LIMITS;
    this.addressLimits = {
      enabled: a.enabled ?? d.enabled,
      maxSenders: a.maxSenders ?? d.maxSenders,
      idleTimeoutMs: a.idleTimeoutMs ?? d.idleTimeoutMs,
      allowed: a.allowed ?? d.allowed,
    };
    this.directory.on('put', this.onPut);
    this.directory.on('delete', this.onDelete);
    for (const e of this.directory.list()) this.syncSenders(e);
  }

  // --- inbound -------------------------------------------------------------------

  /** Takes an accepted connection (RudpSocket 'connection'). */
  accept(duplex: Duplex): PeerLink {
    const link = new PeerLink(duplex, {
      role: 'inbound',
      handler: this,
      clock: this.init.clock,
      maxMessageBytes: this.init.maxMessageBytes,
      pingIntervalMs: this.init.pingIntervalMs,
      pongTimeoutMs: this.init.pongTimeoutMs,
    });
    this.allInbound.add(link);
    link.on('close', err => {
      if (!link.peerId) {
        this.init.log?.warn(
          { err: err.message },
          'inbound peer connection refused or closed before HELLO'
        );
      }
      this.allInbound.delete(link);
      const set = this.inbound.get(link.peerId);
      if (set?.delete(link) && set.size === 0) {
        this.inbound.delete(link.peerId);
        this.init.handler.onPeerGone(link.peerId);
      }
    });
    if (this.closed) link.close();
    return link;
  }

  onHello(link: PeerLink, hello: Hello): void {
    if (this.closed) throw new UnavailableError(`node ${this.localId} is shutting down`);
    let set = this.inbound.get(hello.nodeId);
    if (!set) this.inbound.set(hello.nodeId, (set = new Set()));
    set.add(link);
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

  // --- senders ---------------------------------------------------------------------

  private senderFor(address: HostPort, expectedId: string, retryForever = true): PeerSender {
    const key = formatHostPort(address);
    let s = this.senders.get(key);
    if (!s) {
      s = new PeerSender({
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
        onLinkUp: (_sender, link) => {
          void link.sendInterest({
            snapshot: true,
            add: this.init.handler.localInterests(),
            remove: [],
          });
        },
      });
      this.senders.set(key, s);
    } else if (expectedId && !s.expectedId) {
      s.expectedId = expectedId;
      // An address target's sender now serves a directory peer: no longer bounded.
      if (this.addressSenders.delete(key)) s.keepRetrying();
    }
    return s;
  }

  /** Keeps one sender per address of a directory entry; flushes its unresolved queue. */
  private syncSenders(entry: PeerEntry): void {
    if (this.closed || entry.id === this.localId) return;
    const wanted = new Set(entry.addresses.map(a => formatHostPort(a)));
    for (const [key, s] of this.senders) {
      if (s.expectedId === entry.id && !wanted.has(key)) {
        s.close(`address ${key} left the directory`);
        this.retire(key, s);
      }
    }
    const list = entry.addresses.map(a => this.senderFor(a, entry.id));
    for (const sender of list) sender.start();
    this.sendersByPeer.set(entry.id, list);
    const q = this.unresolved.get(entry.id);
    if (q && entry.addresses.length > 0) {
      this.unresolved.delete(entry.id);
      q.timer?.cancel();
      let item: SenderItem | undefined;
      while ((item = q.items.shift())) this.submitToPeer(entry, item);
    }
  }

  private removePeer(id: string): void {
    this.sendersByPeer.delete(id);
    for (const [key, s] of this.senders) {
      if (s.expectedId === id) {
        s.close(`peer ${id} was removed from the directory`);
        this.retire(key, s);
      }
    }
    this.failUnresolved(id, new UnavailableError(`peer "${id}" was removed from the directory`));
  }

  private retire(key: string, s: PeerSender): void {
    this.senders.delete(key);
    if (this.addressSenders.get(key)?.sender === s) this.addressSenders.delete(key);
    for (const [k, v] of Object.entries(s.drops.snapshot())) {
      this.closedSenderDrops[k] = (this.closedSenderDrops[k] ?? 0) + v;
    }
  }

  /** The healthiest sender of a peer (connected first, fewer failures, lower RTT). */
  private bestSender(entry: PeerEntry): PeerSender | undefined {
    // The list is kept by syncSenders: no address formatting per message.
    const list =
      this.sendersByPeer.get(entry.id) ?? entry.addresses.map(a => this.senderFor(a, entry.id));
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

  private enqueueUnresolved(peerId: string, item: SenderItem): void {
    let q = this.unresolved.get(peerId);
    if (!q) {
      q = {
        items: new BoundedRing<SenderItem>(this.init.unresolvedCapacity ?? 1000),
        bytes: 0,
        timer: undefined,
      };
      this.unresolved.set(peerId, q);
    }
    const limit = this.init.unresolvedBytes ?? 16 * 1024 * 1024;
    if (q.items.full || q.bytes + item.bytes > limit) {
      this.drops.add('unresolved_queue_full');
      throw new ResourceExhaustedError(
        `queue for unresolved peer "${peerId}" is full (${q.items.length} messages, ${q.bytes} bytes)`
      );
    }
    q.items.push(item);
    q.bytes += item.bytes;
    this.scheduleUnresolvedSweep(peerId, q);
  }

  private scheduleUnresolvedSweep(peerId: string, q: Unresolved): void {
    if (q.timer) return;
    q.timer = this.init.clock.setTimer(100, () => {
      q.timer = undefined;
      q.bytes -= removeExpired(q.items, this.init.clock.now(), item => {
        this.drops.add('unresolved_ttl_expired');
        item.reject(
          new DeadlineExceededError(
            `peer "${peerId}" was not resolved in time: the message waited in the unresolved queue until its deadline`
          )
        );
      });
      if (q.items.length > 0) this.scheduleUnresolvedSweep(peerId, q);
      else if (this.unresolved.get(peerId) === q) this.unresolved.delete(peerId);
    });
  }

  private failUnresolved(peerId: string, err: Error): void {
    const q = this.unresolved.get(peerId);
    if (!q) return;
    this.unresolved.delete(peerId);
    q.timer?.cancel();
    let item: SenderItem | undefined;
    while ((item = q.items.shift())) item.reject(err);
  }

  /**
   * An address target: the sender of a directory peer at that address, else an address
   * sender (checked against addressTargetCidrs, capped by maxAddressSenders).
   */
  private submitToAddress(address: string, item: SenderItem): void {
    const lim = this.addressLimits;
    if (!lim.enabled) {
      this.drops.add('address_targets_disabled');
      throw new FailedPreconditionError(
        `target.address is turned off on node ${this.localId} (config key addressTargets is false): address the node by peer_id instead`
      );
    }
    const addr = parseHostPort(address, 'target address');
    if (!lim.allowed.matchesAll) {
      if (isIP(addr.host) === 0) {
        this.drops.add('address_not_allowed');
        throw new PermissionDeniedError(
          `target address "${address}" is a host name; node ${this.localId} allows only IP addresses inside addressTargetCidrs (${lim.allowed.toString()})`
        );
      }
      if (!lim.allowed.has(addr.host)) {
        this.drops.add('address_not_allowed');
        throw new PermissionDeniedError(
          `target address "${address}" is outside addressTargetCidrs (${lim.allowed.toString()}) of node ${this.localId}`
        );
      }
    }
    const key = formatHostPort(addr);
    const now = this.init.clock.now();
    const existing = this.senders.get(key);
    if (existing) {
      const use = this.addressSenders.get(key);
      if (use) use.lastUsedAt = now;
      existing.submit(item);
      return;
    }
    if (this.addressSenders.size >= lim.maxSenders) {
      this.drops.add('address_senders_full');
      throw new ResourceExhaustedError(
        `node ${this.localId} already has ${this.addressSenders.size} senders for address targets, the most allowed (maxAddressSenders); one is retired after ${lim.idleTimeoutMs} ms unused (addressSenderIdleMs); retry later, or add the node as a peer (PutPeer) and send by peer_id`
      );
    }
    const sender = this.senderFor(addr, '', false);
    this.addressSenders.set(key, { sender, lastUsedAt: now });
    this.scheduleAddressSweep(lim.idleTimeoutMs);
    sender.submit(item);
  }

  /** One timer for all address senders, due when the least recently used one is. */
  private scheduleAddressSweep(delayMs: number): void {
    if (this.addressSweep || this.closed) return;
    this.addressSweep = this.init.clock.setTimer(delayMs, () => {
      this.addressSweep = undefined;
      this.sweepAddressSenders();
    });
  }

  /** Retires address senders unused for idleTimeoutMs (nothing awaiting an answer). */
  private sweepAddressSenders(): void {
    const now = this.init.clock.now();
    const idle = this.addressLimits.idleTimeoutMs;
    let next = Infinity;
    for (const [key, use] of this.addressSenders) {
      // Work handed to a live link and not answered yet: the link is in use.
      if (use.sender.inFlight > 0) use.lastUsedAt = now;
      const due = use.lastUsedAt + idle;
      if (due <= now) {
        use.sender.close(
          `its sender for address target ${key} was retired after ${idle} ms unused (addressSenderIdleMs)`,
          'address_sender_retired'
        );
        this.retire(key, use.sender);
        this.addressSenderRetirements.add('idle');
      } else {
        next = Math.min(next, due);
      }
    }
    // At most about 16 sweeps per idle period however the uses are spread (each is O(n)).
    if (next !== Infinity) this.scheduleAddressSweep(Math.max(next - now, idle / 16));
  }

  /** Live senders for address targets outside the directory (a metric). */
  get addressSenderCount(): number {
    return this.addressSenders.size;
  }

  /** Routes an item to a peer id or address; throws for immediate refusals. */
  private route(target: ClusterTarget, item: SenderItem, failFast: boolean): void {
    if (this.closed) throw new UnavailableError(`node ${this.localId} is shutting down`);
    if ('address' in target) {
      this.submitToAddress(target.address, item);
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
    this.enqueueUnresolved(target.peerId, item);
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

  /** Sends an interest delta to every connected peer. */
  broadcastInterest(update: InterestUpdate): Promise<void> {
    const acks: Array<Promise<void>> = [];
    for (const s of this.senders.values()) if (s.link) acks.push(s.link.sendInterest(update));
    return Promise.all(acks).then(() => undefined);
  }

  /** Connection figures of a peer for ListPeers. */
  peerStatus(id: string): ClusterPeerStatus {
    const entry = this.directory.get(id);
    const q = this.unresolved.get(id);
    let state = entry && entry.addresses.length > 0 ? 'idle' : 'unresolved';
    let srttUs = 0;
    let inFlight = 0;
    let queueDepth = q?.items.length ?? 0;
    let lastError = '';
    let lastSeen = 0;
    const rank = ['closed', 'idle', 'backoff', 'connecting', 'connected'];
    for (const s of this.senders.values()) {
      if (s.expectedId !== id) continue;
      if (rank.indexOf(s.state) > rank.indexOf(state)) state = s.state;
      if (s.state === 'backoff' && state === 'backoff') state = 'failed';
      srttUs = srttUs || s.srttUs;
      inFlight += s.link?.inFlight ?? 0;
      queueDepth += s.depth;
      lastError = lastError || s.lastError;
      lastSeen = Math.max(lastSeen, s.link?.lastSeenUnixMs ?? 0);
    }
    for (const l of this.inbound.get(id) ?? []) lastSeen = Math.max(lastSeen, l.lastSeenUnixMs);
    return { state, srttUs, inFlight, queueDepth, lastError, lastSeenUnixMs: lastSeen };
  }

  /** Drop counters of the cluster and all its senders, by reason. */
  dropCounts(): Record<string, number> {
    const out: Record<string, number> = { ...this.closedSenderDrops };
    for (const [k, v] of Object.entries(this.drops.snapshot())) out[k] = (out[k] ?? 0) + v;
    for (const s of this.senders.values()) {
      for (const [k, v] of Object.entries(s.drops.snapshot())) out[k] = (out[k] ?? 0) + v;
    }
    return out;
  }

  /** Live links (outbound and inbound), for transport metrics. */
  links(): PeerLink[] {
    const out: PeerLink[] = [...this.allInbound];
    for (const s of this.senders.values()) if (s.link) out.push(s.link);
    return out;
  }

  /**
   * Safe close: withdraw interest, let senders finish their queues up to `timeoutMs`,
   * then close every link gracefully. Idempotent.
   */
  async drain(timeoutMs: number): Promise<boolean> {
    if (this.closed) return true;
    void this.broadcastInterest({ snapshot: true, add: [], remove: [] });
    const results = await Promise.all([...this.senders.values()].map(s => s.drain(timeoutMs)));
    this.close();
    return results.every(Boolean);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.directory.off('put', this.onPut);
    this.directory.off('delete', this.onDelete);
    this.addressSweep?.cancel();
    this.addressSweep = undefined;
    for (const s of this.senders.values()) s.close();
    this.senders.clear();
    this.addressSenders.clear();
    this.sendersByPeer.clear();
    for (const id of [...this.unresolved.keys()]) {
      this.failUnresolved(id, new UnavailableError(`node ${this.localId} is shutting down`));
    }
    for (const l of [...this.allInbound]) l.close();
  }
}
