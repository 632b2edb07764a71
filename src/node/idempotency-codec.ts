/**
 * The bodies of the IDEMPOTENCY_* peer ops (src/dispatch/wire.ts), in binary: one per
 * keyed Send crosses the link up to three times, so they are written with the varint and
 * UTF-8 helpers of src/common like the message bodies, not as JSON. Strings are a varint
 * byte length then UTF-8; numbers are varints. Decoding is strict: a body cut short, a
 * string or number over its bound, an unknown kind or flag, or bytes left over throw a
 * ProtocolError naming the op (the peer link answers the call with it).
 *
 *   CLAIM            varint leaseMs (>= 1), string key, string token
 *   CLAIM answer     byte kind (CLAIM_KIND), then for duplicate: string id, varint
 *                    delivered; for unverified: string replica
 *   COMPLETE         byte flags (COMPLETE_OK, COMPLETE_REPLICA_HELD), string key,
 *                    string token, string id, varint delivered; answered with no body
 *   REPLICATE        string key, string id, varint delivered, varint remainingMs;
 *                    answered with one byte, 1 taken, 0 refused (store full)
 *   LOOKUP           string key
 *   LOOKUP answer    nothing (no record), or a record as in REPLICATE
 */
import type { VarintCursor, VarintLimit } from '../common';
import {
  ProtocolError,
  VARINT_MAX_SAFE,
  VARINT_MAX_U32,
  readVarint,
  utf8Length,
  varintLimit,
  varintSize,
  writeUtf8,
  writeVarint,
} from '../common';
import type { ClaimAnswer } from './idempotency-store';
import { MAX_MESSAGE_ID_BYTES } from './validation';

/** Largest idempotency key, in UTF-8 bytes. */
export const MAX_IDEMPOTENCY_KEY_BYTES = 256;
/** Bytes a scoped key adds (idempotency.ts, scopedKey): a digest of the scope and a separator. */
export const SCOPE_BYTES = 23;
/** Largest key on the wire: a client's key with its scope. */
const MAX_WIRE_KEY_BYTES = MAX_IDEMPOTENCY_KEY_BYTES + SCOPE_BYTES;
/** Largest claim token (the claiming node's id, a random prefix and a counter). */
export const MAX_CLAIM_TOKEN_BYTES = 256;
/** Largest node id in an `unverified` answer. */
const MAX_NODE_ID_BYTES = 1024;

/**
 * What an owner answers a claim: the store's answer, or `unverified` when it started
 * less than one window ago and could not ask the replica about the key.
 */
export type OwnerAnswer = ClaimAnswer | { kind: 'unverified'; replica: string };

export interface ClaimRequest {
  key: string;
  token: string;
  leaseMs: number;
}

export interface CompleteRequest {
  key: string;
  token: string;
  /** false: the Send failed and the key is forgotten. */
  ok: boolean;
  id: string;
  delivered: number;
  /**
   * The calling node is the key's replica and already holds the record: the owner need
   * not copy it there (it checks that the caller is the replica it would pick).
   */
  replicaHeld?: boolean;
}

/** A done record as the owner copies it to the replica and the replica returns it. */
export interface RecordCopy {
  key: string;
  id: string;
  delivered: number;
  /** How long the record has left in its window. */
  remainingMs: number;
}

/** The byte that starts a CLAIM answer. */
const CLAIM_KIND = { new: 0, duplicate: 1, pending: 2, full: 3, unverified: 4 } as const;
const COMPLETE_OK = 1;
const COMPLETE_REPLICA_HELD = 2;

// --- writing --------------------------------------------------------------------------

/** Writes a string of UTF-8 length `len` (utf8Length) with its length; returns the end. */
function putString(buf: Buffer, pos: number, s: string, len: number): number {
  pos = writeVarint(buf, pos, len);
  return pos + writeUtf8(buf, pos, s, len);
}

/** Bytes a string of UTF-8 length `len` takes with its length. */
const stringSize = (len: number): number => varintSize(len) + len;

export function encodeClaim(c: ClaimRequest): Buffer {
  const keyLen = utf8Length(c.key);
  const tokenLen = utf8Length(c.token);
  const buf = Buffer.allocUnsafe(varintSize(c.leaseMs) + stringSize(keyLen) + stringSize(tokenLen));
  let pos = writeVarint(buf, 0, c.leaseMs);
  pos = putString(buf, pos, c.key, keyLen);
  putString(buf, pos, c.token, tokenLen);
  return buf;
}

/** The answers without fields, encoded once (a body is only read by the link). */
const NEW_ANSWER = Buffer.from([CLAIM_KIND.new]);
const PENDING_ANSWER = Buffer.from([CLAIM_KIND.pending]);
const FULL_ANSWER = Buffer.from([CLAIM_KIND.full]);

export function encodeClaimAnswer(a: OwnerAnswer): Buffer {
  switch (a.kind) {
    case 'new':
      return NEW_ANSWER;
    case 'pending':
      return PENDING_ANSWER;
    case 'full':
      return FULL_ANSWER;
    case 'duplicate': {
      const idLen = utf8Length(a.id);
      const buf = Buffer.allocUnsafe(1 + stringSize(idLen) + varintSize(a.delivered));
      buf[0] = CLAIM_KIND.duplicate;
      writeVarint(buf, putString(buf, 1, a.id, idLen), a.delivered);
      return buf;
    }
    case 'unverified': {
      const len = utf8Length(a.replica);
      const buf = Buffer.allocUnsafe(1 + stringSize(len));
      buf[0] = CLAIM_KIND.unverified;
      putString(buf, 1, a.replica, len);
      return buf;
    }
  }
}

export function encodeComplete(c: CompleteRequest): Buffer {
  const keyLen = utf8Length(c.key);
  const tokenLen = utf8Length(c.token);
  const idLen = utf8Length(c.id);
  const buf = Buffer.allocUnsafe(
    1 + stringSize(keyLen) + stringSize(tokenLen) + stringSize(idLen) + varintSize(c.delivered)
  );
  buf[0] = (c.ok ? COMPLETE_OK : 0) | (c.replicaHeld ? COMPLETE_REPLICA_HELD : 0);
  let pos = putString(buf, 1, c.key, keyLen);
  pos = putString(buf, pos, c.token, tokenLen);
  pos = putString(buf, pos, c.id, idLen);
  writeVarint(buf, pos, c.delivered);
  return buf;
}

export function encodeRecord(r: RecordCopy): Buffer {
  const keyLen = utf8Length(r.key);
  const idLen = utf8Length(r.id);
  const remainingMs = Math.max(0, Math.round(r.remainingMs));
  const buf = Buffer.allocUnsafe(
    stringSize(keyLen) + stringSize(idLen) + varintSize(r.delivered) + varintSize(remainingMs)
  );
  let pos = putString(buf, 0, r.key, keyLen);
  pos = putString(buf, pos, r.id, idLen);
  pos = writeVarint(buf, pos, r.delivered);
  writeVarint(buf, pos, remainingMs);
  return buf;
}

export function encodeLookup(key: string): Buffer {
  const len = utf8Length(key);
  const buf = Buffer.allocUnsafe(stringSize(len));
  putString(buf, 0, key, len);
  return buf;
}

/** LOOKUP's answer: the replica's record, or an empty body when it has none. */
export function encodeLookupAnswer(r: RecordCopy | undefined): Buffer {
  return r ? encodeRecord(r) : Buffer.alloc(0);
}

// --- reading --------------------------------------------------------------------------

/** Reads one body; every error names `what` (the op). */
class Reader implements VarintCursor {
  pos = 0;
  private readonly u32: VarintLimit;
  private readonly safe: VarintLimit;
  constructor(
    readonly buf: Buffer,
    private readonly what: string
  ) {
    const l = limits(what);
    this.u32 = l.u32;
    this.safe = l.safe;
  }

  byte(): number {
    if (this.pos >= this.buf.length) throw new ProtocolError(`${this.what} truncated`);
    return this.buf[this.pos++];
  }

  u32Varint(): number {
    return readVarint(this, this.u32);
  }

  safeVarint(): number {
    return readVarint(this, this.safe);
  }

  /** A length-prefixed string of at most `maxBytes` bytes; `field` names it in errors. */
  string(field: string, maxBytes: number): string {
    const len = readVarint(this, this.u32);
    if (len > maxBytes) {
      throw new ProtocolError(`${this.what}: ${field} is ${len} bytes, over ${maxBytes}`);
    }
    if (this.pos + len > this.buf.length) {
      throw new ProtocolError(`${this.what} truncated inside ${field}`);
    }
    const start = this.pos;
    this.pos += len;
    return this.buf.toString('utf8', start, start + len);
  }

  /** The body must end here. */
  end(): void {
    if (this.pos !== this.buf.length) {
      throw new ProtocolError(`${this.what}: ${this.buf.length - this.pos} bytes after the end`);
    }
  }
}

const limitCache = new Map<string, { u32: VarintLimit; safe: VarintLimit }>();
function limits(what: string): { u32: VarintLimit; safe: VarintLimit } {
  let l = limitCache.get(what);
  if (!l) {
    l = { u32: varintLimit(VARINT_MAX_U32, what), safe: varintLimit(VARINT_MAX_SAFE, what) };
    limitCache.set(what, l);
  }
  return l;
}

export function decodeClaim(body: Buffer): ClaimRequest {
  const r = new Reader(body, 'IDEMPOTENCY_CLAIM');
  const leaseMs = r.safeVarint();
  if (leaseMs < 1) throw new ProtocolError('IDEMPOTENCY_CLAIM: lease of 0 ms');
  const key = r.string('key', MAX_WIRE_KEY_BYTES);
  const token = r.string('token', MAX_CLAIM_TOKEN_BYTES);
  r.end();
  return { key, token, leaseMs };
}

export function decodeClaimAnswer(body: Buffer): OwnerAnswer {
  const r = new Reader(body, 'IDEMPOTENCY_CLAIM answer');
  const kind = r.byte();
  let answer: OwnerAnswer;
  switch (kind) {
    case CLAIM_KIND.new:
      answer = { kind: 'new' };
      break;
    case CLAIM_KIND.pending:
      answer = { kind: 'pending' };
      break;
    case CLAIM_KIND.full:
      answer = { kind: 'full' };
      break;
    case CLAIM_KIND.duplicate: {
      const id = r.string('id', MAX_MESSAGE_ID_BYTES);
      answer = { kind: 'duplicate', id, delivered: r.u32Varint() };
      break;
    }
    case CLAIM_KIND.unverified:
      answer = { kind: 'unverified', replica: r.string('replica', MAX_NODE_ID_BYTES) };
      break;
    default:
      throw new ProtocolError(`IDEMPOTENCY_CLAIM answer: unknown kind ${kind}`);
  }
  r.end();
  return answer;
}

export function decodeComplete(body: Buffer): CompleteRequest {
  const r = new Reader(body, 'IDEMPOTENCY_COMPLETE');
  const flags = r.byte();
  if ((flags & ~(COMPLETE_OK | COMPLETE_REPLICA_HELD)) !== 0) {
    throw new ProtocolError(`IDEMPOTENCY_COMPLETE: unknown flags ${flags}`);
  }
  const key = r.string('key', MAX_WIRE_KEY_BYTES);
  const token = r.string('token', MAX_CLAIM_TOKEN_BYTES);
  const id = r.string('id', MAX_MESSAGE_ID_BYTES);
  const delivered = r.u32Varint();
  r.end();
  return {
    key,
    token,
    ok: (flags & COMPLETE_OK) !== 0,
    id,
    delivered,
    replicaHeld: (flags & COMPLETE_REPLICA_HELD) !== 0,
  };
}

function readRecord(r: Reader): RecordCopy {
  const key = r.string('key', MAX_WIRE_KEY_BYTES);
  const id = r.string('id', MAX_MESSAGE_ID_BYTES);
  const delivered = r.u32Varint();
  const remainingMs = r.safeVarint();
  r.end();
  return { key, id, delivered, remainingMs };
}

export function decodeRecord(body: Buffer): RecordCopy {
  return readRecord(new Reader(body, 'IDEMPOTENCY_REPLICATE'));
}

export function decodeLookup(body: Buffer): string {
  const r = new Reader(body, 'IDEMPOTENCY_LOOKUP');
  const key = r.string('key', MAX_WIRE_KEY_BYTES);
  r.end();
  return key;
}

export function decodeLookupAnswer(body: Buffer): RecordCopy | undefined {
  return body.length === 0 ? undefined : readRecord(new Reader(body, 'IDEMPOTENCY_LOOKUP answer'));
}
