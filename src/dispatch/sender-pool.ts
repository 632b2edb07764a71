/**
 * SenderPool: the one place peer senders are created, shared and retired, one sender per
 * canonical address. Directory peers hold references to the senders at their addresses
 * (two peer ids at one address share it); a sender closes when its last reference goes.
 * Senders for `target.address` outside the peer directory hold no reference: they are
 * allowed only inside addressTargetCidrs, leased per use, at most `maxSenders` of them
 * (past it RESOURCE_EXHAUSTED, drop reason address_senders_full), and retired after
 * `idleTimeoutMs` unused (clock injected). An address sender whose address joins the
 * directory becomes that peer's and unbounded.
 */
import { isIP } from 'node:net';
import type { Clock, HostPort, Timer } from '../common';
import {
  CidrSet,
  DropCounter,
  FailedPreconditionError,
  PermissionDeniedError,
  ResourceExhaustedError,
  formatHostPort,
  parseHostPort,
} from '../common';
import type { PeerSender } from './peer-sender';

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

/** Drop reasons of refused address targets (ClusterDropReason has them too). */
export type AddressTargetRefusal =
  'address_senders_full' | 'address_not_allowed' | 'address_targets_disabled';

export interface SenderPoolInit {
  /** This node's id (named in refusals). */
  localId: string;
  clock: Clock;
  /** Bounds on address senders. @default DEFAULT_ADDRESS_TARGET_LIMITS */
  limits?: Partial<AddressTargetLimits>;
  /** Counts refused address targets (the cluster's counter: the send is refused). */
  drops: { add(reason: AddressTargetRefusal): void };
  /**
   * Builds a sender for `address`; `expectedId` is '' for an address target, whose sender
   * does not retry once its queue is empty (`retryForever` false).
   */
  create(address: HostPort, expectedId: string, retryForever: boolean): PeerSender;
}

interface PoolEntry {
  readonly sender: PeerSender;
  /** Directory peers using the sender: its references. */
  readonly peers: Set<string>;
  /** Last use as an address target (meaningful while the key is in addressKeys). */
  lastUsedAt: number;
}

export class SenderPool {
  private readonly init: SenderPoolInit;
  readonly limits: AddressTargetLimits;
  /** By canonical address. */
  private readonly entries = new Map<string, PoolEntry>();
  /** Each directory peer's senders, one per address, in the directory's order. */
  private readonly byPeer = new Map<string, PeerSender[]>();
  /** Keys of the senders leased to address targets outside the directory. */
  private readonly addressKeys = new Set<string>();
  private sweepTimer: Timer | undefined;
  /** Address senders retired, by reason (exported as a counter). */
  readonly retirements = new DropCounter<AddressSenderRetireReason>();
  private closed = false;

  constructor(init: SenderPoolInit) {
    this.init = init;
    const l = init.limits ?? {};
    const d = DEFAULT_ADDRESS_TARGET_LIMITS;
    this.limits = {
      enabled: l.enabled ?? d.enabled,
      maxSenders: l.maxSenders ?? d.maxSenders,
      idleTimeoutMs: l.idleTimeoutMs ?? d.idleTimeoutMs,
      allowed: l.allowed ?? d.allowed,
    };
  }

  /** Every live sender. */
  senders(): IterableIterator<PeerSender> {
    return [...this.entries.values()].map(e => e.sender).values();
  }

  /** Live senders for address targets outside the directory (a metric). */
  get addressSenderCount(): number {
    return this.addressKeys.size;
  }

  /** The senders of directory peer `peerId` (undefined before its first sync). */
  peerSenders(peerId: string): readonly PeerSender[] | undefined {
    return this.byPeer.get(peerId);
  }

  /**
   * Keeps one sender per address of directory peer `peerId`: references the senders at
   * `addresses` (created or shared) and releases the ones at addresses it no longer has.
   */
  syncPeer(peerId: string, addresses: readonly HostPort[]): readonly PeerSender[] {
    const wanted = new Set(addresses.map(a => formatHostPort(a)));
    for (const s of this.byPeer.get(peerId) ?? []) {
      if (!wanted.has(s.key)) this.release(s.key, peerId, `address ${s.key} left the directory`);
    }
    const list = addresses.map(a => this.acquire(a, peerId));
    this.byPeer.set(peerId, list);
    return list;
  }

  /** Releases every sender of directory peer `peerId` (removed from the directory). */
  removePeer(peerId: string): void {
    const list = this.byPeer.get(peerId) ?? [];
    this.byPeer.delete(peerId);
    for (const s of list) {
      this.release(s.key, peerId, `peer ${peerId} was removed from the directory`);
    }
  }

  private acquire(address: HostPort, peerId: string): PeerSender {
    const key = formatHostPort(address);
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { sender: this.init.create(address, peerId, true), peers: new Set(), lastUsedAt: 0 };
      this.entries.set(key, entry);
    } else if (!entry.sender.expectedId) {
      entry.sender.expectedId = peerId;
      // An address target's sender now serves a directory peer: no longer bounded.
      if (this.addressKeys.delete(key)) entry.sender.keepRetrying();
    }
    entry.peers.add(peerId);
    return entry.sender;
  }

  /** Drops `peerId`'s reference to the sender at `key`; the last one closes it. */
  private release(key: string, peerId: string, why: string): void {
    const entry = this.entries.get(key);
    if (!entry || !entry.peers.delete(peerId)) return;
    if (entry.peers.size > 0) {
      // Still shared: future dials expect the id of a peer that still uses it.
      if (entry.sender.expectedId === peerId) {
        entry.sender.expectedId = entry.peers.values().next().value ?? '';
      }
      return;
    }
    entry.sender.close(why);
    this.entries.delete(key);
  }

  /**
   * The sender for an address target ("host:port"): the one already at that address (a
   * directory peer's or an address sender, marked used now), else a new address sender.
   * Refused (counted): FAILED_PRECONDITION when address targets are off,
   * PERMISSION_DENIED outside addressTargetCidrs, RESOURCE_EXHAUSTED at maxSenders.
   */
  forAddress(target: string): PeerSender {
    const lim = this.limits;
    const localId = this.init.localId;
    if (!lim.enabled) {
      this.init.drops.add('address_targets_disabled');
      throw new FailedPreconditionError(
        `target.address is turned off on node ${localId} (config key addressTargets is false): address the node by peer_id instead`
      );
    }
    const address = parseHostPort(target, 'target address');
    if (!lim.allowed.matchesAll) {
      if (isIP(address.host) === 0) {
        this.init.drops.add('address_not_allowed');
        throw new PermissionDeniedError(
          `target address "${target}" is a host name; node ${localId} allows only IP addresses inside addressTargetCidrs (${lim.allowed.toString()})`
        );
      }
      if (!lim.allowed.has(address.host)) {
        this.init.drops.add('address_not_allowed');
        throw new PermissionDeniedError(
          `target address "${target}" is outside addressTargetCidrs (${lim.allowed.toString()}) of node ${localId}`
        );
      }
    }
    const key = formatHostPort(address);
    const now = this.init.clock.now();
    const existing = this.entries.get(key);
    if (existing) {
      if (this.addressKeys.has(key)) existing.lastUsedAt = now;
      return existing.sender;
    }
    if (this.addressKeys.size >= lim.maxSenders) {
      this.init.drops.add('address_senders_full');
      throw new ResourceExhaustedError(
        `node ${localId} already has ${this.addressKeys.size} senders for address targets, the most allowed (maxAddressSenders); one is retired after ${lim.idleTimeoutMs} ms unused (addressSenderIdleMs); retry later, or add the node as a peer (PutPeer) and send by peer_id`
      );
    }
    const sender = this.init.create(address, '', false);
    this.entries.set(key, { sender, peers: new Set(), lastUsedAt: now });
    this.addressKeys.add(key);
    this.scheduleSweep(lim.idleTimeoutMs);
    return sender;
  }

  /** One timer for all address senders, due when the least recently used one is. */
  private scheduleSweep(delayMs: number): void {
    if (this.sweepTimer || this.closed) return;
    this.sweepTimer = this.init.clock.setTimer(delayMs, () => {
      this.sweepTimer = undefined;
      this.sweep();
    });
  }

  /** Retires address senders unused for idleTimeoutMs (nothing awaiting an answer). */
  private sweep(): void {
    const now = this.init.clock.now();
    const idle = this.limits.idleTimeoutMs;
    let next = Infinity;
    for (const key of this.addressKeys) {
      const entry = this.entries.get(key);
      if (!entry) continue;
      // Work handed to a live link and not answered yet: the link is in use.
      if (entry.sender.inFlight > 0) entry.lastUsedAt = now;
      const due = entry.lastUsedAt + idle;
      if (due <= now) {
        entry.sender.close(
          `its sender for address target ${key} was retired after ${idle} ms unused (addressSenderIdleMs)`,
          'address_sender_retired'
        );
        this.entries.delete(key);
        this.addressKeys.delete(key);
        this.retirements.add('idle');
      } else {
        next = Math.min(next, due);
      }
    }
    // At most about 16 sweeps per idle period however the uses are spread (each is O(n)).
    if (next !== Infinity) this.scheduleSweep(Math.max(next - now, idle / 16));
  }

  /** Closes every sender (queued work fails as `shutdown`). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sweepTimer?.cancel();
    this.sweepTimer = undefined;
    for (const e of this.entries.values()) e.sender.close();
    this.entries.clear();
    this.addressKeys.clear();
    this.byPeer.clear();
  }
}
