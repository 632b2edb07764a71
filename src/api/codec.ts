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
import type { DeliveryBatch, WireDelivery, WireMessage } from './proto';
import { MESSAGING_PROTO, protoDir } from './proto';
import { LATENCY_TRACE, Stage, traceMark } from '../common';
// straight from the module, not the index: a re-export is a getter call per use (hot path)
import { varintSize, writeVarint } from '../common';
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

function messageSize(m: WireMessage, strLens: number[]): number {
  const idLen = m.id ? Buffer.byteLength(m.id) : 0;
  const topicLen = m.topic ? Buffer.byteLength(m.topic) : 0;
  strLens.push(idLen, topicLen);
  let size = (idLen ? lenField(idLen) : 0) + (topicLen ? lenField(topicLen) : 0);
  const payloadLen = m.payload ? m.payload.length : 0;
  if (payloadLen) size += lenField(payloadLen);
  const headers = m.headers;
  if (headers) {
    for (const k in headers) {
      const kLen = Buffer.byteLength(k);
      const vLen = Buffer.byteLength(headers[k]);
      strLens.push(kLen, vLen);
      const entry = lenField(kLen) + (vLen ? lenField(vLen) : 0);
      size += lenField(entry);
    }
  }
  return size;
}

/** Node's undocumented-in-types fast writers (skip Buffer.write's argument parsing). */
type FastWriteBuffer = Buffer & {
  latin1Write(s: string, offset: number, length: number): number;
  utf8Write(s: string, offset: number, length: number): number;
};

function writeString(buf: Buffer, pos: number, tag: number, s: string, len: number): number {
  buf[pos++] = tag;
  pos = writeVarint(buf, pos, len);
  // Byte length equal to UTF-16 length means pure ASCII: latin1 is exact and faster.
  if (len === s.length) (buf as FastWriteBuffer).latin1Write(s, pos, len);
  else (buf as FastWriteBuffer).utf8Write(s, pos, len);
  return pos + len;
}

function writeMessage(
  buf: Buffer,
  pos: number,
  m: WireMessage,
  strLens: number[],
  si: number
): number {
  const idLen = strLens[si++];
  const topicLen = strLens[si++];
  if (idLen) pos = writeString(buf, pos, 0x0a, m.id, idLen);
  if (topicLen) pos = writeString(buf, pos, 0x12, m.topic, topicLen);
  const payload = m.payload;
  if (payload && payload.length) {
    buf[pos++] = 0x1a;
    pos = writeVarint(buf, pos, payload.length);
    pos += payload.copy(buf, pos);
  }
  const headers = m.headers;
  if (headers) {
    for (const k in headers) {
      const kLen = strLens[si++];
      const vLen = strLens[si++];
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
  const strLens: number[] = [];
  const msgSizes = new Array<number>(n);
  const delSizes = new Array<number>(n);
  const extraLens = new Array<number>(n * 2);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const d = deliveries[i];
    const ms = messageSize(d.message, strLens);
    const sp = d.sourcePeer ? Buffer.byteLength(d.sourcePeer) : 0;
    const rt = d.replyTo ? Buffer.byteLength(d.replyTo) : 0;
    extraLens[2 * i] = sp;
    extraLens[2 * i + 1] = rt;
    const ds = lenField(ms) + (sp ? lenField(sp) : 0) + (rt ? lenField(rt) : 0);
    msgSizes[i] = ms;
    delSizes[i] = ds;
    total += lenField(ds);
  }
  if (batch.dropped) total += 1 + varintSize(batch.dropped);
  const buf = Buffer.allocUnsafe(total);
  let pos = 0;
  let si = 0;
  for (let i = 0; i < n; i++) {
    const d: WireDelivery = deliveries[i];
    buf[pos++] = 0x0a;
    pos = writeVarint(buf, pos, delSizes[i]);
    buf[pos++] = 0x0a;
    pos = writeVarint(buf, pos, msgSizes[i]);
    const before = si;
    pos = writeMessage(buf, pos, d.message, strLens, si);
    // Advance the string-length cursor past this message's entries.
    si = before + 2;
    const headers = d.message.headers;
    if (headers) for (const _k in headers) si += 2;
    const sp = extraLens[2 * i];
    const rt = extraLens[2 * i + 1];
    if (sp) pos = writeString(buf, pos, 0x12, d.sourcePeer, sp);
    if (rt) pos = writeString(buf, pos, 0x1a, d.replyTo, rt);
  }
  if (batch.dropped) {
    buf[pos++] = 0x10;
    pos = writeVarint(buf, pos, batch.dropped);
  }
  return pos === total ? buf : buf.subarray(0, pos);
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
    return (this.buf as Buffer).toString('utf8', start, this.pos);
  }
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
    encoder('SendStreamResponse')
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
