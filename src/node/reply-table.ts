/**
 * Reply tokens for requests delivered to local subscribers: token -> waiting requester.
 * Each entry owns its timer and removes itself on reply, timeout, cancel or close, so
 * nothing outlives its request.
 *
 * A token names the node that issued it, so a Respond sent to any node of the cluster
 * can be forwarded here: `<node id>~<prefix>.<counter>.<random>~<mac>`. The opaque id
 * (prefix: random per process run; a counter; 8 random bytes) is unguessable, so no one
 * can answer a request they were not given. The MAC (HMAC-SHA256 under a key derived
 * from the cluster secret, cut to 96 bits) covers the node id and the run's prefix: no
 * client can make up an issuer, so other nodes forward replies only to a node of this
 * cluster. It depends on the run, not the request, so each node computes it once per
 * issuer run and remembers it (an HMAC per token cost 2 of the 10 us a request spends
 * here, twice). Node ids never contain `~`; prefixes are base64url, without `.`.
 *
 * During a cluster secret rotation the table holds several keys: new tokens are MACed with
 * the first, a token MACed with any of them is accepted (a request made before a node
 * switched secrets still gets its reply).
 *
 * When a request is gone, the table remembers why for a while (bounded): a late Respond
 * learns whether the requester timed out, cancelled, was already answered, or whether the
 * token is unknown here (issued by an earlier run of this node, or long forgotten).
 */
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock, DropLedger, Message, Timer } from '../common';
import { DeadlineExceededError, DropCounter } from '../common';

export interface ReplyResult {
  reply: Message;
  /** Node id of the responder (this node for local subscribers). */
  responderPeer: string;
}

interface Pending {
  resolve(r: ReplyResult): void;
  reject(err: Error): void;
  timer: Timer;
  /** The request's topic: a reply without a topic gets it. */
  topic: string;
}

/** A RequestMany's entry: takes every reply until the gather closes it. */
interface GatherEntry {
  topic: string;
  onReply(r: ReplyResult): void;
  /** The node stops (closeAll). */
  onStop(err: Error): void;
}

export type ReplyDropReason = 'unknown_or_expired_token';

/** Why a request is no longer waiting. */
export type GoneReason =
  | 'timed out'
  | 'cancelled'
  | 'already answered'
  | 'node stopped'
  /** A RequestMany ended (max_replies, timeout, stall, cancel): it takes no more replies. */
  | 'gather ended';

/** A token taken apart (the MAC checked). */
export interface ParsedToken {
  /** The node that issued the token and holds the waiting request. */
  issuer: string;
  /** The table's key for the request. */
  opaque: string;
}

const SEPARATOR = '~';
const MAC_BYTES = 12;
/** Issuer runs whose MAC a node remembers (a cluster has a few per node). */
const MAC_CACHE = 1024;
/** Outcomes remembered for late replies. */
const GONE_MEMORY = 8192;

/** The key reply tokens are MACed with: HKDF of the cluster secret, its own label. */
export function replyTokenKey(clusterSecret: Buffer): Buffer {
  return Buffer.from(
    hkdfSync('sha256', clusterSecret, 'meshwire', 'meshwire reply token v1', 32) as ArrayBuffer
  );
}

export class ReplyTable {
  private readonly pending = new Map<string, Pending>();
  /** RequestMany entries: each takes many replies (looked up after `pending` misses). */
  private readonly gathers = new Map<string, GatherEntry>();
  /** Recently finished requests and why, oldest first (bounded by GONE_MEMORY). */
  private readonly gone = new Map<string, GoneReason>();
  /** The keys of `gone` in insertion order, a ring: goneNext is the oldest once full. */
  private readonly goneOrder = new Array<string>(GONE_MEMORY);
  private goneNext = 0;
  private readonly prefix: string;
  /** This run's token suffix: `~` and the MAC of (node id, prefix). */
  private macSuffix: string;
  /** MACs of issuer runs seen, by `issuer~prefix`: one per key, in key order. */
  private readonly macs = new Map<string, Buffer[]>();
  /** MAC keys; the first signs new tokens. */
  private keys: readonly Buffer[];
  private counter = 0;
  private readonly entropy = Buffer.alloc(4096);
  private entropyPos = this.entropy.length;
  readonly drops: DropCounter<ReplyDropReason>;

  /**
   * @param nodeId the issuing node, named in every token
   * @param key the MAC key (replyTokenKey of the cluster secret), or several (the first
   *   signs, any verifies); every node of a cluster must accept the key others sign with
   * @param ledger the node's drop ledger (unknown tokens are drops)
   */
  constructor(
    private readonly clock: Clock,
    private readonly nodeId = 'local',
    key: Buffer | readonly Buffer[] = replyTokenKey(randomBytes(32)),
    ledger?: DropLedger
  ) {
    this.drops = new DropCounter('reply_table', ledger);
    this.prefix = randomBytes(6).toString('base64url');
    this.keys = Buffer.isBuffer(key) ? [key] : [...key];
    if (this.keys.length === 0) throw new Error('ReplyTable needs at least one key');
    this.macSuffix = this.suffix();
  }

  private suffix(): string {
    return `${SEPARATOR}${this.mac(this.keys[0], this.nodeId, this.prefix).toString('base64url')}`;
  }

  /**
   * Replaces the MAC keys (a cluster secret rotation): tokens issued from now on are MACed
   * with the first; tokens MACed with any of them verify.
   */
  setKeys(keys: readonly Buffer[]): void {
    if (keys.length === 0) throw new Error('ReplyTable needs at least one key');
    this.keys = [...keys];
    this.macs.clear();
    this.macSuffix = this.suffix();
  }

  get size(): number {
    return this.pending.size;
  }

  /** Open RequestMany entries. */
  get gatherCount(): number {
    return this.gathers.size;
  }

  /** 8 random bytes from a pooled buffer: one randomFillSync per 512 tokens. */
  private randomPart(): string {
    if (this.entropyPos + 8 > this.entropy.length) {
      randomBytes(this.entropy.length).copy(this.entropy);
      this.entropyPos = 0;
    }
    const s = this.entropy.toString('base64url', this.entropyPos, this.entropyPos + 8);
    this.entropyPos += 8;
    return s;
  }

  private mac(key: Buffer, issuer: string, prefix: string): Buffer {
    return createHmac('sha256', key)
      .update(issuer)
      .update(SEPARATOR)
      .update(prefix)
      .digest()
      .subarray(0, MAC_BYTES);
  }

  /** The MACs of an issuer run under each key, computed once and remembered (bounded). */
  private macsOf(issuer: string, prefix: string): Buffer[] {
    const key = `${issuer}${SEPARATOR}${prefix}`;
    let macs = this.macs.get(key);
    if (!macs) {
      if (this.macs.size >= MAC_CACHE) this.macs.clear();
      macs = this.keys.map(k => this.mac(k, issuer, prefix));
      this.macs.set(key, macs);
    }
    return macs;
  }

  /**
   * Takes a token apart and checks its MAC. Undefined for anything this cluster did not
   * issue (malformed, forged, or MACed under another cluster secret).
   */
  parse(token: string): ParsedToken | undefined {
    const a = token.indexOf(SEPARATOR);
    const b = token.indexOf(SEPARATOR, a + 1);
    if (a <= 0 || b <= a + 1 || token.indexOf(SEPARATOR, b + 1) !== -1) return undefined;
    const issuer = token.slice(0, a);
    const opaque = token.slice(a + 1, b);
    const dot = opaque.indexOf('.');
    if (dot <= 0) return undefined;
    const given = Buffer.from(token.slice(b + 1), 'base64url');
    if (given.length !== MAC_BYTES) return undefined;
    const macs = this.macsOf(issuer, opaque.slice(0, dot));
    if (!macs.some(mac => timingSafeEqual(given, mac))) return undefined;
    return { issuer, opaque };
  }

  /**
   * Registers a waiting request. The timeout error is made only when the timeout fires:
   * capturing a stack per request cost 13% of the request path (profiled), and the caller
   * of a gRPC handler has no useful stack to keep.
   */
  /** A new token: `<node id>~<prefix>.<counter>.<random>~<mac>` and its opaque part. */
  private newToken(): { opaque: string; token: string } {
    const opaque = `${this.prefix}.${(this.counter++).toString(36)}.${this.randomPart()}`;
    return { opaque, token: `${this.nodeId}${SEPARATOR}${opaque}${this.macSuffix}` };
  }

  /**
   * Registers a RequestMany: every reply to its token goes to `onReply` until `close()`
   * (idempotent); a reply after that learns the gather ended. Timing and limits are the
   * caller's (gather.ts): this entry only routes replies. `onStop` runs when the node
   * stops (closeAll) with the entry still open.
   */
  registerMany(
    topic: string,
    onReply: (r: ReplyResult) => void,
    onStop: (err: Error) => void
  ): { token: string; close(): void } {
    const { opaque, token } = this.newToken();
    this.gathers.set(opaque, { topic, onReply, onStop });
    return {
      token,
      close: () => {
        if (this.gathers.delete(opaque)) this.remember(opaque, 'gather ended');
      },
    };
  }

  register(
    timeoutMs: number,
    timeoutError: () => DeadlineExceededError,
    topic = ''
  ): { token: string; promise: Promise<ReplyResult>; cancel(err: Error): void } {
    const { opaque, token } = this.newToken();
    let cancel!: (err: Error) => void;
    const promise = new Promise<ReplyResult>((resolve, reject) => {
      const timer = this.clock.setTimer(timeoutMs, () => {
        if (this.pending.delete(opaque)) {
          this.remember(opaque, 'timed out');
          reject(timeoutError());
        }
      });
      this.pending.set(opaque, { resolve, reject, timer, topic });
      cancel = (err: Error) => {
        const p = this.pending.get(opaque);
        if (!p) return;
        this.pending.delete(opaque);
        // a peer's deadline passing reaches us as a cancel with a timeout error
        this.remember(opaque, err instanceof DeadlineExceededError ? 'timed out' : 'cancelled');
        p.timer.cancel();
        p.reject(err);
      };
    });
    return { token, promise, cancel };
  }

  private remember(opaque: string, why: GoneReason): void {
    if (this.gone.has(opaque)) {
      this.gone.set(opaque, why);
      return;
    }
    // Oldest first out of goneOrder, not the Map's first key: a Map keeps deleted entries
    // as holes until it rehashes, and its iterator walks over every one of them (up to
    // GONE_MEMORY per request at full rate; resolve() was 8% of the node under RequestStream).
    if (this.gone.size >= GONE_MEMORY) this.gone.delete(this.goneOrder[this.goneNext]);
    this.goneOrder[this.goneNext] = opaque;
    this.goneNext = (this.goneNext + 1) % GONE_MEMORY;
    this.gone.set(opaque, why);
  }

  /**
   * Completes a request by its opaque id (ParsedToken.opaque). Returns true, or why the
   * request is not waiting ('unknown' when this table never saw it or forgot it); counted.
   * A reply without a topic gets the request's.
   */
  resolve(opaque: string, result: ReplyResult): true | GoneReason | 'unknown' {
    const p = this.pending.get(opaque);
    if (!p) {
      const g = this.gathers.get(opaque);
      if (g) {
        if (!result.reply.topic) result.reply.topic = g.topic;
        g.onReply(result);
        return true;
      }
      this.drops.add('unknown_or_expired_token');
      return this.gone.get(opaque) ?? 'unknown';
    }
    this.pending.delete(opaque);
    this.remember(opaque, 'already answered');
    p.timer.cancel();
    if (!result.reply.topic) result.reply.topic = p.topic;
    p.resolve(result);
    return true;
  }

  /** True while a RequestMany with this opaque id takes replies. */
  isGather(opaque: string): boolean {
    return this.gathers.has(opaque);
  }

  /** True while the request with this opaque id waits for a reply. */
  has(opaque: string): boolean {
    return this.pending.has(opaque) || this.gathers.has(opaque);
  }

  /** Fails every pending request (node shutdown). */
  closeAll(err: Error): void {
    for (const [opaque, p] of this.pending) {
      this.pending.delete(opaque);
      this.remember(opaque, 'node stopped');
      p.timer.cancel();
      p.reject(err);
    }
    for (const [opaque, g] of this.gathers) {
      this.gathers.delete(opaque);
      this.remember(opaque, 'node stopped');
      g.onStop(err);
    }
  }
}
