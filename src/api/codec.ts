/**
 * Fast serializers for the Messenger hot paths. proto-loader's default (de)serializers
 * run protobufjs `toObject`/`fromObject` on every message, which costs more than the
 * decode itself at high rates; here requests are decoded straight to protobufjs message
 * instances and deliveries are written by a hand-rolled protobuf writer into one buffer
 * (the payload is copied exactly once). Wire format is plain protobuf: any client works.
 */
import { join } from 'node:path';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import type { Type } from 'protobufjs';
import { BufferReader, Root } from 'protobufjs';
import type { DeliveryBatch, SendStreamResponse, WireDelivery, WireMessage } from './proto';
import { MESSAGING_PROTO, protoDir } from './proto';
import { LATENCY_TRACE, Stage, traceMark } from '../common';
// straight from the module, not the index: a re-export is a getter call per use (hot path)
import { utf8Length, varintSize, writeUtf8, writeVarint } from '../common';
import type { StageId } from '../common';

let root: Root | undefined;
function types(): Root {
  if (!root) {
    root = new Root();
    root.loadSync(join(protoDir(), MESSAGING_PROTO), { keepCase: false });
    root.resolveAll();
  }
  return root;
}

function type(name: string): Type {
  return types().lookupType(`messaging.v1.${name}`);
}

/** Length-delimited field size: tag + length varint + body. */
const lenField = (len: number): number => 1 + varintSize(len) + len;

/**
 * Lengths computed by the sizing pass of encodeDeliveryBatch, read back by the writing
 * pass: one scratch array for the process (encoding is synchronous), grown as needed, so
 * a batch allocates nothing but its output buffer.
 */
let lens = new Int32Array(4096);

function growLens(need: number): void {
  let size = lens.length;
  while (size < need) size *= 2;
  const next = new Int32Array(size);
  next.set(lens);
  lens = next;
}

/**
 * Per delivery in `lens`: its size, its message's size, source, reply_to, then the
 * message's id, topic and header count (the header lengths follow).
 */
const PER_DELIVERY = 7;

/**
 * The topic measured last: a batch's messages mostly share their topic (one string, when
 * decoded here: see internedString), so most are not measured again.
 */
let lastTopic = '';
let lastTopicLen = 0;

/**
 * Stores the lengths of `m` at `lens[at...]` (id, topic, header count, then each header
 * key and value; the caller reserved room for the first three) and returns the encoded
 * message's size.
 */
function messageSize(m: WireMessage, at: number): number {
  const idLen = m.id ? utf8Length(m.id) : 0;
  const topic = m.topic;
  let topicLen = 0;
  if (topic === lastTopic) topicLen = lastTopicLen;
  else if (topic) {
    topicLen = utf8Length(topic);
    lastTopic = topic;
    lastTopicLen = topicLen;
  }
  lens[at] = idLen;
  lens[at + 1] = topicLen;
  lens[at + 2] = 0;
  let size = (idLen ? lenField(idLen) : 0) + (topicLen ? lenField(topicLen) : 0);
  const payloadLen = m.payload ? m.payload.length : 0;
  if (payloadLen) size += lenField(payloadLen);
  const headers = m.headers;
  if (headers) {
    let hi = at + 3;
    for (const k in headers) {
      if (hi + 2 > lens.length) growLens(hi + 2);
      const kLen = utf8Length(k);
      const vLen = utf8Length(headers[k]);
      lens[hi++] = kLen;
      lens[hi++] = vLen;
      const entry = lenField(kLen) + (vLen ? lenField(vLen) : 0);
      size += lenField(entry);
    }
    lens[at + 2] = (hi - at - 3) / 2;
  }
  return size;
}

/** Node's undocumented-in-types fast writers (skip Buffer.write's argument parsing). */
function writeString(buf: Buffer, pos: number, tag: number, s: string, len: number): number {
  buf[pos++] = tag;
  pos = writeVarint(buf, pos, len);
  return pos + writeUtf8(buf, pos, s, len);
}

/** Writes `m` with the lengths messageSize stored at `lens[at...]`. */
function writeMessage(buf: Buffer, pos: number, m: WireMessage, at: number): number {
  const idLen = lens[at];
  const topicLen = lens[at + 1];
  if (idLen) pos = writeString(buf, pos, 0x0a, m.id, idLen);
  if (topicLen) pos = writeString(buf, pos, 0x12, m.topic, topicLen);
  const payload = m.payload;
  if (payload && payload.length) {
    buf[pos++] = 0x1a;
    pos = writeVarint(buf, pos, payload.length);
    // set, not copy: Buffer#copy's argument checks cost more than a 128-byte memcpy
    buf.set(payload, pos);
    pos += payload.length;
  }
  // Headers only when counted: for-in costs even over an empty object.
  const headers = m.headers;
  if (lens[at + 2] > 0) {
    let hi = at + 3;
    for (const k in headers) {
      const kLen = lens[hi++];
      const vLen = lens[hi++];
      const entry = lenField(kLen) + (vLen ? lenField(vLen) : 0);
      buf[pos++] = 0x22;
      pos = writeVarint(buf, pos, entry);
      pos = writeString(buf, pos, 0x0a, k, kLen);
      if (vLen) pos = writeString(buf, pos, 0x12, headers[k], vLen);
    }
  }
  return pos;
}

/** Encodes a DeliveryBatch (messaging.v1) into one buffer. */
export function encodeDeliveryBatch(batch: DeliveryBatch): Buffer {
  const deliveries = batch.deliveries;
  const n = deliveries.length;
  // Sizing pass: each delivery's lengths at `at`, its message's header lengths after them.
  let at = 0;
  let total = 0;
  // Deliveries of a batch mostly come from one node: measure its id once.
  let lastSource = '';
  let lastSourceLen = 0;
  for (let i = 0; i < n; i++) {
    const d = deliveries[i];
    if (at + PER_DELIVERY > lens.length) growLens(at + PER_DELIVERY);
    const ms = messageSize(d.message, at + 4);
    const source = d.sourcePeer;
    if (source !== lastSource) {
      lastSource = source;
      lastSourceLen = source ? utf8Length(source) : 0;
    }
    const sp = lastSourceLen;
    const rt = d.replyTo ? utf8Length(d.replyTo) : 0;
    const ds = lenField(ms) + (sp ? lenField(sp) : 0) + (rt ? lenField(rt) : 0);
    lens[at] = ds;
    lens[at + 1] = ms;
    lens[at + 2] = sp;
    lens[at + 3] = rt;
    total += lenField(ds);
    at += PER_DELIVERY + 2 * lens[at + 6];
  }
  if (batch.dropped) total += 1 + varintSize(batch.dropped);
  const buf = Buffer.allocUnsafe(total);
  let pos = 0;
  at = 0;
  for (let i = 0; i < n; i++) {
    const d: WireDelivery = deliveries[i];
    buf[pos++] = 0x0a;
    pos = writeVarint(buf, pos, lens[at]);
    buf[pos++] = 0x0a;
    pos = writeVarint(buf, pos, lens[at + 1]);
    const sp = lens[at + 2];
    const rt = lens[at + 3];
    pos = writeMessage(buf, pos, d.message, at + 4);
    if (sp) pos = writeString(buf, pos, 0x12, d.sourcePeer, sp);
    if (rt) pos = writeString(buf, pos, 0x1a, d.replyTo, rt);
    at += PER_DELIVERY + 2 * lens[at + 6];
  }
  if (batch.dropped) {
    buf[pos++] = 0x10;
    pos = writeVarint(buf, pos, batch.dropped);
  }
  return pos === total ? buf : buf.subarray(0, pos);
}

/**
 * Encodes a SendStreamResponse (messaging.v1): an ack carries the id of every message of
 * its request, and protobufjs's writer spends an operation object and a native string
 * write on each. Fields at their proto3 default are left out, as proto3 allows. Anything
 * this writer does not cover (a negative error code, a sequence past 2^53) goes through
 * `fallback`.
 */
export function encodeSendStreamResponse(
  r: SendStreamResponse,
  fallback: (r: SendStreamResponse) => Buffer
): Buffer {
  const sequence = r.sequence ?? 0;
  const delivered = r.delivered ?? 0;
  const errorCode = r.errorCode ?? 0;
  if (
    typeof sequence !== 'number' ||
    !Number.isSafeInteger(sequence) ||
    sequence < 0 ||
    !Number.isInteger(delivered) ||
    delivered < 0 ||
    delivered > 0xffffffff ||
    !Number.isInteger(errorCode) ||
    errorCode < 0 ||
    errorCode > 0x7fffffff
  ) {
    return fallback(r);
  }
  const ids = r.ids ?? [];
  const message = r.errorMessage ?? '';
  if (ids.length > lens.length) growLens(ids.length);
  let total = sequence ? 1 + varintSize(sequence) : 0;
  for (let i = 0; i < ids.length; i++) {
    const len = utf8Length(ids[i]);
    lens[i] = len;
    total += lenField(len);
  }
  if (delivered) total += 1 + varintSize(delivered);
  if (errorCode) total += 1 + varintSize(errorCode);
  const messageLen = message ? Buffer.byteLength(message) : 0;
  if (messageLen) total += lenField(messageLen);
  const buf = Buffer.allocUnsafe(total);
  let pos = 0;
  if (sequence) {
    buf[pos++] = 0x08;
    pos = writeVarint(buf, pos, sequence);
  }
  for (let i = 0; i < ids.length; i++) pos = writeString(buf, pos, 0x12, ids[i], lens[i]);
  if (delivered) {
    buf[pos++] = 0x18;
    pos = writeVarint(buf, pos, delivered);
  }
  if (errorCode) {
    buf[pos++] = 0x20;
    pos = writeVarint(buf, pos, errorCode);
  }
  if (messageLen) pos = writeString(buf, pos, 0x2a, message, messageLen);
  return buf;
}

/** Converts protobufjs 64-bit values (Long or number) to a number. */
export function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v && typeof (v as { toNumber?: () => number }).toNumber === 'function') {
    return (v as { toNumber(): number }).toNumber();
  }
  return Number(v ?? 0);
}

/**
 * Enum names by number, from the proto itself (protobufjs decodes enums to numbers);
 * a number the proto does not name stays a number (the handlers refuse it).
 */
function enumNames(name: string): Record<number, string> {
  return types().lookupEnum(`messaging.v1.${name}`).valuesById;
}

interface Decoded {
  [k: string]: unknown;
}

/**
 * protobufjs's Buffer reader clamps a string whose length runs past the end of the body
 * (a truncated request decodes to a shorter string); this one rejects it, like bytes and
 * embedded messages, so a truncated body is a malformed body (src/api/request-body.ts).
 */
class StrictBufferReader extends BufferReader {
  override string(): string {
    const len = this.uint32();
    const start = this.pos;
    if (len > this.len - start) {
      throw new RangeError(`index out of range: ${start} + ${len} > ${this.len}`);
    }
    this.pos = start + len;
    const buf = this.buf as Buffer;
    return len <= INTERNED_MAX_BYTES && len > 0
      ? internedString(buf, start, len)
      : buf.toString('utf8', start, this.pos);
  }
}

/** Strings up to this many bytes are looked up in the interned strings first. */
const INTERNED_MAX_BYTES = 48;
/** Slots of the interned strings (a power of two). */
const INTERNED_SLOTS = 256;
/** Recently decoded short ASCII strings, by a hash of their bytes; one string a slot. */
const interned = new Array<string>(INTERNED_SLOTS).fill('');

/**
 * The string of `len` UTF-8 bytes at `buf[start]`. Publishers repeat a few topics (and
 * header keys) in every message: a short ASCII string equal to one decoded lately is that
 * same string, found by comparing bytes, so the message costs no native decode and no new
 * string (which the subscriber's buffer would keep alive).
 */
function internedString(buf: Buffer, start: number, len: number): string {
  const end = start + len;
  const slot = (len * 31 + buf[start] * 7 + buf[end - 1]) & (INTERNED_SLOTS - 1);
  const known = interned[slot];
  if (known.length === len) {
    // Only ASCII strings are kept (below): a byte matches its character exactly, and
    // any byte of a multi-byte character matches none.
    let i = 0;
    while (i < len && buf[start + i] === known.charCodeAt(i)) i++;
    if (i === len) return known;
  }
  const s = buf.toString('utf8', start, end);
  // As many characters as bytes: ASCII, or U+FFFD for invalid bytes (never matched).
  if (s.length === len) interned[slot] = s;
  return s;
}

/** Decoders: protobufjs decode without toObject; fields fixed up to the wire shapes. */
function decoder(typeName: string, fix?: (m: Decoded) => void): (buf: Buffer) => unknown {
  const t = type(typeName);
  return (buf: Buffer) => {
    const m = t.decode(new StrictBufferReader(buf)) as unknown as Decoded;
    fix?.(m);
    return m;
  };
}

const fixTarget = (m: Decoded): void => {
  const target = m.target as Decoded | null | undefined;
  if (target) target.kind = target.peerId ? 'peerId' : target.address ? 'address' : undefined;
};

function encoder(typeName: string): (value: unknown) => Buffer {
  const t = type(typeName);
  return (value: unknown): Buffer => {
    const bytes = t.encode(value as Record<string, unknown>).finish();
    // protobufjs returns a Buffer under Node; wrap only if it did not.
    return Buffer.isBuffer(bytes)
      ? bytes
      : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  };
}

/** The SendStreamResponse serializer: the hand-written writer, protobufjs for the rest. */
function fastSendStreamResponse(): (value: unknown) => Buffer {
  const general = encoder('SendStreamResponse');
  return (value: unknown) => encodeSendStreamResponse(value as SendStreamResponse, general);
}

/**
 * Returns a copy of the Messenger service definition whose hot methods use the fast
 * serializers above. Other methods keep proto-loader's.
 */
export function fastMessengerDefinition(def: ServiceDefinition): ServiceDefinition {
  const out: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(def)) out[name] = { ...method };
  const set = (
    name: string,
    requestDeserialize?: (b: Buffer) => unknown,
    responseSerialize?: (v: unknown) => Buffer
  ): void => {
    const m = out[name];
    if (!m) return;
    if (requestDeserialize) m.requestDeserialize = requestDeserialize;
    if (responseSerialize) m.responseSerialize = responseSerialize;
  };
  set(
    'Send',
    decoder('SendRequest', m => {
      fixTarget(m);
      fixAck(m);
    }),
    encoder('SendResponse')
  );
  set(
    'SendStream',
    decoder('SendStreamRequest', m => {
      fixTarget(m);
      fixAck(m);
      m.sequence = toNumber(m.sequence);
    }),
    fastSendStreamResponse()
  );
  const ACK_NAMES = enumNames('AckMode');
  const POLICY_NAMES = enumNames('SlowConsumerPolicy');
  const fixAck = (m: Decoded): void => {
    if (typeof m.ack === 'number') m.ack = ACK_NAMES[m.ack] ?? m.ack;
  };
  set(
    'Subscribe',
    decoder('SubscribeRequest', m => {
      if (typeof m.slowConsumerPolicy === 'number') {
        m.slowConsumerPolicy = POLICY_NAMES[m.slowConsumerPolicy] ?? m.slowConsumerPolicy;
      }
    }),
    v => encodeDeliveryBatch(v as DeliveryBatch)
  );
  set('Request', decoder('RequestRequest', fixTarget), encoder('RequestResponse'));
  set(
    'RequestStream',
    decoder('RequestStreamRequest', fixTarget),
    encoder('RequestStreamResponse')
  );
  set('Respond', decoder('RespondRequest'));
  set('RespondStream', decoder('RespondRequest'));
  set('RequestMany', decoder('RequestManyRequest', fixTarget), encoder('RequestManyResponse'));
  if (LATENCY_TRACE) traceSerializers(out);
  return out as ServiceDefinition;
}

/** `fn` between two latency stamps (src/common/latency-trace.ts). */
function stamped<A, R>(fn: (a: A) => R, start: StageId, end: StageId) {
  return (a: A): R => {
    traceMark(start);
    const r = fn(a);
    traceMark(end);
    return r;
  };
}

/**
 * With MESHWIRE_LATENCY_TRACE=1 only: stamps around the Request decode, the delivery encode, the RespondStream decode and the Request reply encode.
 */
function traceSerializers(out: Record<string, MethodDefinition<unknown, unknown>>): void {
  const req = out.Request;
  if (req) {
    req.requestDeserialize = stamped(
      req.requestDeserialize,
      Stage.GRPC_DECODE_START,
      Stage.GRPC_DECODED
    );
    req.responseSerialize = stamped(
      req.responseSerialize,
      Stage.REPLY_ENCODE_START,
      Stage.REPLY_ENCODED
    );
  }
  const sub = out.Subscribe;
  if (sub) {
    sub.responseSerialize = stamped(
      sub.responseSerialize,
      Stage.DELIVERY_ENCODE_START,
      Stage.DELIVERY_ENCODED
    );
  }
  const rs = out.RespondStream;
  if (rs) {
    rs.requestDeserialize = stamped(
      rs.requestDeserialize,
      Stage.RESPOND_DECODE_START,
      Stage.RESPOND_DECODED
    );
  }
}

/**
 * The Peers service with proto-loader's deserializers behind a strict check: proto-loader
 * (protobufjs underneath) shortens a string that runs past the end of a truncated body;
 * checking with the strict reader first makes that a malformed body (INVALID_ARGUMENT),
 * as on Messenger. Admin calls are rare: decoding twice costs nothing that matters.
 */
export function strictPeersDefinition(def: ServiceDefinition): ServiceDefinition {
  const out: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(def)) {
    const check = type(`${name}Request`);
    const decode = method.requestDeserialize;
    out[name] = {
      ...method,
      requestDeserialize: (buf: Buffer) => {
        check.decode(new StrictBufferReader(buf));
        return decode(buf);
      },
    };
  }
  return out as ServiceDefinition;
}
