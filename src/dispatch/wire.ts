/**
 * What nodes say to each other, on top of rpc envelopes over two mux channels:
 *
 *   channel CONTROL (urgent): HELLO (request: who are you / whom did you mean),
 *                             INTEREST (oneway: subscription patterns advertised)
 *   channel DATA:             MESSAGE (oneway, or request when the sender wants a
 *                             DELIVERED count), REQUEST (request; the reply is the
 *                             response body), RESPOND (request), IDEMPOTENCY_CLAIM,
 *                             _COMPLETE, _REPLICATE, _LOOKUP (requests with node-layer
 *                             bodies)
 *
 * Message bodies (pure codec, no I/O):
 *   u8 flags (1: deliver to plain subscribers, 2: group list follows, 4: all subscribers
 *             with one member of every queue group)
 *   var len, origin node id (sender for messages, responder for replies)
 *   var len, message id
 *   var len, topic
 *   [var seq]                        if flag 16: the sending node's sequence number, the
 *                                    key of duplicate suppression (dedup.ts)
 *   [var count, (var len, group)*]   if flag 2
 *   [var len, reply token]           if flag 32: every delivery carries this reply_to
 *                                    (a RequestMany's deliveries, node.ts requestMany)
 *   payload: every remaining byte
 * Message headers travel as envelope headers.
 */
import type { Message } from '../common';
import { ProtocolError } from '../common';
import type { VarintLimit } from '../common';
// straight from the module, not the index: a re-export is a getter call per use (hot path)
import {
  VARINT_MAX_SAFE,
  readVarint,
  utf8Length,
  varintSize,
  writeUtf8,
  writeVarint,
} from '../common';

export const CHANNEL_CONTROL = 1;
export const CHANNEL_DATA = 2;

export enum Op {
  HELLO = 1,
  INTEREST = 2,
  MESSAGE = 3,
  REQUEST = 4,
  /** Oneway: many fire-and-forget messages (each with its own headers) in one envelope. */
  MESSAGE_BATCH = 5,
  /**
   * Request: a reply handed to another node of the cluster, for the pending request its
   * reply token names (the reply goes to the node that issued the token).
   */
  RESPOND = 6,
  /**
   * Request: claim an idempotency key at the node that owns it (src/node/idempotency-codec.ts
   * encodes the bodies, in binary; this layer carries them as bytes).
   */
  IDEMPOTENCY_CLAIM = 7,
  /** Request: the claimed Send was acked (or failed): the owner records or forgets the key. */
  IDEMPOTENCY_COMPLETE = 8,
  /** Request: an owner copies a key's ack to the key's replica. */
  IDEMPOTENCY_REPLICATE = 9,
  /** Request: a recently restarted owner asks the replica for a key's ack. */
  IDEMPOTENCY_LOOKUP = 10,
}

/** Data-channel ops whose bodies the node layer encodes and answers (ClusterHandler.onPeerCall). */
export type PeerCallOp =
  Op.IDEMPOTENCY_CLAIM | Op.IDEMPOTENCY_COMPLETE | Op.IDEMPOTENCY_REPLICATE | Op.IDEMPOTENCY_LOOKUP;

/** Which local subscriptions a forwarded message is for. */
export interface DeliveryScope {
  /** Every local subscriber, one member of each queue group (a message sent to this node). */
  allGroups: boolean;
  /** Plain (non-group) subscribers. */
  plain: boolean;
  /** Queue groups this node must give the message to (one member each). */
  groups: string[];
  /**
   * The reply_to every delivery of this message carries (a RequestMany's token); absent
   * or '' for plain messages.
   */
  replyTo?: string;
}

export const ALL_SUBSCRIBERS: DeliveryScope = { allGroups: true, plain: true, groups: [] };

const FLAG_PLAIN = 1;
const FLAG_GROUPS = 2;
const FLAG_ALL_GROUPS = 4;
const FLAG_HEADERS = 8;
const FLAG_SEQ = 16;
const FLAG_REPLY_TO = 32;

/** Body varints (lengths, counts, sequence numbers) go up to 2^53 - 1 (8 bytes). */
const BODY_VARINT: VarintLimit = {
  maxValue: VARINT_MAX_SAFE,
  maxBytes: 8,
  truncated: 'truncated varint in message body',
  tooLarge: 'varint above 2^53 - 1 in message body',
  tooLong: 'varint too long in message body',
};

/**
 * The last origin and topic decoded: a batch from one node repeats them, and a string
 * reused is a string neither decoded nor allocated again.
 */
const SLOT_ORIGIN = 0;
const SLOT_TOPIC = 1;
const recentStrings = ['', ''];

/** Whether buf[start, start + s.length) holds the ASCII string `s`. */
function asciiEquals(buf: Buffer, start: number, s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const b = buf[start + i];
    if (b >= 0x80 || b !== s.charCodeAt(i)) return false;
  }
  return true;
}

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  varint(): number {
    return readVarint(this, BODY_VARINT);
  }

  /** A length-prefixed string; `slot` (SLOT_*) names a recently decoded one to reuse. */
  string(slot = -1): string {
    const len = this.varint();
    if (this.pos + len > this.buf.length)
      throw new ProtocolError('truncated string in message body');
    const start = this.pos;
    this.pos += len;
    if (slot < 0) return this.buf.toString('utf8', start, start + len);
    const recent = recentStrings[slot];
    if (recent.length === len && asciiEquals(this.buf, start, recent)) return recent;
    const s = this.buf.toString('utf8', start, start + len);
    recentStrings[slot] = s;
    return s;
  }
}

/**
 * The encoded size of a message body, with the lengths its writer needs (computed once:
 * Buffer.byteLength per string is most of the encoding cost for small messages).
 */
export interface BodyPlan {
  size: number;
  originLen: number;
  idLen: number;
  topicLen: number;
  groupLens: number[];
  headerLens: number[] | undefined;
  /** UTF-8 length of scope.replyTo, 0 for none. */
  replyToLen: number;
  /** The sending node's sequence number, or -1 for none (replies). */
  seq: number;
}

const NO_GROUPS: number[] = [];

function planMessageBody(
  msg: Message,
  origin: string,
  scope: DeliveryScope,
  inlineHeaders: boolean,
  seq: number
): BodyPlan {
  const originLen = utf8Length(origin);
  const idLen = utf8Length(msg.id);
  const topicLen = utf8Length(msg.topic);
  let size =
    1 +
    varintSize(originLen) +
    originLen +
    varintSize(idLen) +
    idLen +
    varintSize(topicLen) +
    topicLen +
    msg.payload.length;
  if (seq >= 0) size += varintSize(seq);
  const groupLens =
    scope.groups.length === 0 ? NO_GROUPS : scope.groups.map(g => Buffer.byteLength(g));
  if (groupLens.length > 0) {
    size += varintSize(groupLens.length);
    for (const l of groupLens) size += varintSize(l) + l;
  }
  const replyToLen = scope.replyTo ? utf8Length(scope.replyTo) : 0;
  if (replyToLen > 0) size += varintSize(replyToLen) + replyToLen;
  let headerLens: number[] | undefined;
  if (inlineHeaders) {
    headerLens = [];
    let count = 0;
    for (const k in msg.headers) {
      const kl = utf8Length(k);
      const vl = utf8Length(msg.headers[k]);
      headerLens.push(kl, vl);
      size += varintSize(kl) + kl + varintSize(vl) + vl;
      count++;
    }
    size += varintSize(count);
  }
  return { size, originLen, idLen, topicLen, groupLens, headerLens, replyToLen, seq };
}

/** Writes a planned body at `pos`; returns the position after it. */
function writeMessageBody(
  buf: Buffer,
  pos: number,
  msg: Message,
  origin: string,
  scope: DeliveryScope,
  plan: BodyPlan
): number {
  const { groupLens, headerLens } = plan;
  buf[pos++] =
    (scope.plain ? FLAG_PLAIN : 0) |
    (groupLens.length > 0 ? FLAG_GROUPS : 0) |
    (scope.allGroups ? FLAG_ALL_GROUPS : 0) |
    (headerLens ? FLAG_HEADERS : 0) |
    (plan.seq >= 0 ? FLAG_SEQ : 0) |
    (plan.replyToLen > 0 ? FLAG_REPLY_TO : 0);
  pos = writeVarint(buf, pos, plan.originLen);
  pos += writeUtf8(buf, pos, origin, plan.originLen);
  pos = writeVarint(buf, pos, plan.idLen);
  pos += writeUtf8(buf, pos, msg.id, plan.idLen);
  pos = writeVarint(buf, pos, plan.topicLen);
  pos += writeUtf8(buf, pos, msg.topic, plan.topicLen);
  if (plan.seq >= 0) pos = writeVarint(buf, pos, plan.seq);
  if (groupLens.length > 0) {
    pos = writeVarint(buf, pos, groupLens.length);
    for (let i = 0; i < groupLens.length; i++) {
      pos = writeVarint(buf, pos, groupLens[i]);
      pos += buf.write(scope.groups[i], pos, groupLens[i], 'utf8');
    }
  }
  if (plan.replyToLen > 0) {
    pos = writeVarint(buf, pos, plan.replyToLen);
    pos += writeUtf8(buf, pos, scope.replyTo as string, plan.replyToLen);
  }
  if (headerLens) {
    pos = writeVarint(buf, pos, headerLens.length / 2);
    let i = 0;
    for (const k in msg.headers) {
      pos = writeVarint(buf, pos, headerLens[i]);
      pos += writeUtf8(buf, pos, k, headerLens[i++]);
      pos = writeVarint(buf, pos, headerLens[i]);
      pos += writeUtf8(buf, pos, msg.headers[k], headerLens[i++]);
    }
  }
  // TypedArray#set: the same bytes as Buffer#copy without a call into C++ (small payloads)
  buf.set(msg.payload, pos);
  return pos + msg.payload.length;
}

/**
 * Encodes a message body (payload copied once into the result). `seq` is the sending
 * node's sequence number for duplicate suppression; -1 for none.
 */
export function encodeMessageBody(
  msg: Message,
  origin: string,
  scope: DeliveryScope,
  inlineHeaders = false,
  seq = -1
): Buffer {
  const plan = planMessageBody(msg, origin, scope, inlineHeaders, seq);
  const buf = Buffer.allocUnsafe(plan.size);
  writeMessageBody(buf, 0, msg, origin, scope, plan);
  return buf;
}

/** Room kept in front of a batch for its message count (a varint of at most 65536). */
const BATCH_COUNT_ROOM = 3;

/**
 * Builds a MESSAGE_BATCH body (varint count, then each body as varint length + bytes;
 * decodeBatch reads it) by writing each message straight
 * into one buffer: no per-message Buffer and no second copy when the batch is sent.
 */
export class BatchEncoder {
  private buf: Buffer;
  private pos = BATCH_COUNT_ROOM;
  /** Messages in the current batch. */
  count = 0;

  /** @param capacity bytes a batch may hold (the link flushes before exceeding it) */
  constructor(private readonly capacity: number) {
    this.buf = Buffer.allocUnsafe(0);
  }

  /** Encoded bytes of the current batch (what the batch body will hold, roughly). */
  get bytes(): number {
    return this.count === 0 ? 0 : this.pos - BATCH_COUNT_ROOM;
  }

  /** Plans `msg` (its `size` is what adding it takes, for the caller's flush decision). */
  plan(msg: Message, origin: string, scope: DeliveryScope, seq = -1): BodyPlan {
    return planMessageBody(msg, origin, scope, true, seq);
  }

  /** Appends a planned message (with its length prefix). */
  add(msg: Message, origin: string, scope: DeliveryScope, plan: BodyPlan): void {
    const need = varintSize(plan.size) + plan.size;
    if (this.pos + need > this.buf.length) this.grow(need);
    this.pos = writeVarint(this.buf, this.pos, plan.size);
    this.pos = writeMessageBody(this.buf, this.pos, msg, origin, scope, plan);
    this.count++;
  }

  /** A new buffer with room for a whole batch; the batch so far moves over. */
  private grow(need: number): void {
    const next = Buffer.allocUnsafe(Math.max(this.capacity + BATCH_COUNT_ROOM, this.pos + need));
    if (this.count > 0) this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /**
   * The batch body (count + length-prefixed bodies); starts an empty batch in the rest of
   * the buffer (the body taken is a view the transport owns until it is sent).
   */
  take(): Buffer {
    const n = this.count;
    const start = BATCH_COUNT_ROOM - varintSize(n);
    writeVarint(this.buf, start, n);
    const body = this.buf.subarray(start, this.pos);
    this.buf = this.buf.subarray(this.pos);
    this.pos = BATCH_COUNT_ROOM;
    this.count = 0;
    return body;
  }
}

export interface DecodedBody {
  message: Message;
  origin: string;
  scope: DeliveryScope;
  /** The sending node's sequence number, -1 when the body has none. */
  seq: number;
}

/** Decodes a message body; the payload is a view into `body` (no copy). */
export function decodeMessageBody(body: Buffer, headers: Record<string, string>): DecodedBody {
  if (body.length < 1) throw new ProtocolError('empty message body');
  const flags = body[0];
  const r = new Reader(body);
  r.pos = 1;
  const origin = r.string(SLOT_ORIGIN);
  const id = r.string();
  const topic = r.string(SLOT_TOPIC);
  const seq = flags & FLAG_SEQ ? r.varint() : -1;
  const groups: string[] = [];
  if (flags & FLAG_GROUPS) {
    const n = r.varint();
    if (n > 1024) throw new ProtocolError(`too many queue groups in message body: ${n}`);
    for (let i = 0; i < n; i++) groups.push(r.string());
  }
  const replyTo = flags & FLAG_REPLY_TO ? r.string() : '';
  if (flags & FLAG_HEADERS) {
    const n = r.varint();
    if (n > 1024) throw new ProtocolError(`too many headers in message body: ${n}`);
    // No prototype: a header named "__proto__" must stay a header, not a prototype.
    headers = Object.create(null) as Record<string, string>;
    for (let i = 0; i < n; i++) {
      const k = r.string();
      headers[k] = r.string();
    }
  }
  return {
    message: { id, topic, payload: body.subarray(r.pos), headers },
    origin,
    scope: {
      allGroups: (flags & FLAG_ALL_GROUPS) !== 0,
      plain: (flags & FLAG_PLAIN) !== 0,
      groups,
      ...(replyTo ? { replyTo } : {}),
    },
    seq,
  };
}

/**
 * RESPOND request body: var len, reply token; then the reply as a message body (its
 * origin is the node whose client answered). Headers travel as envelope headers.
 */
export function encodeRespond(token: string, reply: Message, responderPeer: string): Buffer {
  const tokenLen = Buffer.byteLength(token);
  const body = encodeMessageBody(reply, responderPeer, ALL_SUBSCRIBERS);
  const buf = Buffer.allocUnsafe(varintSize(tokenLen) + tokenLen + body.length);
  const pos = writeVarint(buf, 0, tokenLen);
  buf.write(token, pos, tokenLen, 'utf8');
  body.copy(buf, pos + tokenLen);
  return buf;
}

export function decodeRespond(
  body: Buffer,
  headers: Record<string, string>
): { token: string; reply: Message; responderPeer: string } {
  const r = new Reader(body);
  const token = r.string();
  const { message, origin } = decodeMessageBody(body.subarray(r.pos), headers);
  return { token, reply: message, responderPeer: origin };
}

/**
 * HELLO request body: who I am, whom I meant to reach ('' when dialling an address), and
 * this run of my process (a random id: a restarted node numbers its messages afresh, so
 * duplicate suppression keys on node id plus instance).
 */
export interface Hello {
  nodeId: string;
  expectedId: string;
  instance: string;
}

export function encodeHello(h: Hello): Buffer {
  return Buffer.from(JSON.stringify({ n: h.nodeId, e: h.expectedId, i: h.instance }));
}

export function decodeHello(body: Buffer): Hello {
  try {
    const v = JSON.parse(body.toString('utf8')) as { n?: unknown; e?: unknown; i?: unknown };
    if (typeof v.n !== 'string' || typeof v.e !== 'string') throw new Error('fields');
    if (v.i !== undefined && (typeof v.i !== 'string' || v.i.length > 64)) throw new Error('i');
    return { nodeId: v.n, expectedId: v.e, instance: typeof v.i === 'string' ? v.i : '' };
  } catch {
    throw new ProtocolError('malformed HELLO');
  }
}

/** INTEREST oneway body: a full snapshot (replace) or a delta. */
export interface InterestUpdate {
  snapshot: boolean;
  add: Array<{ pattern: string; queueGroup: string }>;
  remove: Array<{ pattern: string; queueGroup: string }>;
}

export function encodeInterest(u: InterestUpdate): Buffer {
  const pack = (l: InterestUpdate['add']) => l.map(i => [i.pattern, i.queueGroup]);
  return Buffer.from(JSON.stringify({ s: u.snapshot ? 1 : 0, a: pack(u.add), r: pack(u.remove) }));
}

export function decodeInterest(body: Buffer): InterestUpdate {
  try {
    const v = JSON.parse(body.toString('utf8')) as { s?: unknown; a?: unknown; r?: unknown };
    const unpack = (l: unknown): InterestUpdate['add'] => {
      if (!Array.isArray(l)) throw new Error('list');
      return l.map(e => {
        if (!Array.isArray(e) || typeof e[0] !== 'string' || typeof e[1] !== 'string') {
          throw new Error('entry');
        }
        return { pattern: e[0] as string, queueGroup: e[1] as string };
      });
    };
    return { snapshot: v.s === 1, add: unpack(v.a), remove: unpack(v.r) };
  } catch {
    throw new ProtocolError('malformed INTEREST');
  }
}

/** DELIVERED count in a MESSAGE response body. */
export function encodeCount(n: number): Buffer {
  const buf = Buffer.allocUnsafe(varintSize(n));
  writeVarint(buf, 0, n);
  return buf;
}

export function decodeCount(body: Buffer): number {
  if (body.length === 0) return 0;
  return new Reader(body).varint();
}

/** Splits a MESSAGE_BATCH body into its message bodies (views, no copies). */
export function decodeBatch(body: Buffer): Buffer[] {
  const r = new Reader(body);
  const n = r.varint();
  if (n > 65536) throw new ProtocolError(`too many messages in a batch: ${n}`);
  const out = new Array<Buffer>(n);
  for (let i = 0; i < n; i++) {
    const len = r.varint();
    if (r.pos + len > body.length) throw new ProtocolError('truncated message in batch');
    out[i] = body.subarray(r.pos, r.pos + len);
    r.pos += len;
  }
  return out;
}
