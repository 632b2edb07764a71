/** Pure envelope encoder: sizes everything first, then writes one buffer. */
import { InvalidArgumentError } from '../common';
import {
  ENVELOPE_VERSION,
  MAX_HEADER_BYTES,
  MAX_HEADERS,
  MAX_STATUS_MESSAGE_BYTES,
} from './constants';
import type { EnvelopeInit, EnvelopeKind } from './envelope-types';
import { FLAG_HEADERS, FLAG_OP, FLAG_STATUS_MESSAGE, FLAG_TIMEOUT } from './envelope-types';
// straight from the module, not the index: a re-export is a getter call per use (hot path)
import { varintSize, writeVarint } from '../common';

const EMPTY = Buffer.alloc(0);

function u32(v: number, name: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new InvalidArgumentError(`${name} must be an integer in 0..2^32-1, got ${v}`);
  }
}

/**
 * Encodes an envelope. Throws InvalidArgumentError for values the wire cannot carry
 * (too many or too large headers, ids out of range); status messages are cut to
 * MAX_STATUS_MESSAGE_BYTES.
 */
export function encodeEnvelope(
  kind: EnvelopeKind,
  id: number,
  timeoutMs: number,
  e: EnvelopeInit
): Buffer {
  u32(id, 'id');
  const op = e.op ?? 0;
  const status = e.status ?? 0;
  const body = e.body ?? EMPTY;
  let flags = 0;
  let size = 3 + varintSize(id);
  if (op !== 0) {
    u32(op, 'op');
    flags |= FLAG_OP;
    size += varintSize(op);
  }
  let msgBytes = 0;
  if (e.statusMessage) {
    flags |= FLAG_STATUS_MESSAGE;
    msgBytes = Math.min(Buffer.byteLength(e.statusMessage), MAX_STATUS_MESSAGE_BYTES);
    size += varintSize(msgBytes) + msgBytes;
  }
  if (timeoutMs > 0) {
    timeoutMs = Math.min(Math.ceil(timeoutMs), 0xffffffff);
    flags |= FLAG_TIMEOUT;
    size += varintSize(timeoutMs);
  }
  let keys: string[] | undefined;
  let lens: number[] | undefined;
  if (e.headers) {
    keys = Object.keys(e.headers);
    if (keys.length > 0) {
      if (keys.length > MAX_HEADERS) {
        throw new InvalidArgumentError(`${keys.length} headers, above the limit of ${MAX_HEADERS}`);
      }
      flags |= FLAG_HEADERS;
      lens = new Array<number>(keys.length * 2);
      let hbytes = 0;
      size += varintSize(keys.length);
      for (let i = 0; i < keys.length; i++) {
        const k = Buffer.byteLength(keys[i]);
        const v = Buffer.byteLength(e.headers[keys[i]]);
        lens[2 * i] = k;
        lens[2 * i + 1] = v;
        hbytes += k + v;
        size += varintSize(k) + k + varintSize(v) + v;
      }
      if (hbytes > MAX_HEADER_BYTES) {
        throw new InvalidArgumentError(
          `headers of ${hbytes} bytes, above the limit of ${MAX_HEADER_BYTES}`
        );
      }
    }
  }
  size += body.length;
  const buf = Buffer.allocUnsafe(size);
  buf[0] = (ENVELOPE_VERSION << 4) | kind;
  buf[1] = flags;
  let o = writeVarint(buf, 2, id);
  buf[o++] = status;
  if (flags & FLAG_OP) o = writeVarint(buf, o, op);
  if (flags & FLAG_STATUS_MESSAGE) {
    o = writeVarint(buf, o, msgBytes);
    const full = Buffer.byteLength(e.statusMessage as string);
    if (full === msgBytes) {
      o += buf.write(e.statusMessage as string, o, 'utf8');
    } else {
      // Cut on a character boundary: a partial UTF-8 sequence would decode as U+FFFD.
      let cut = Buffer.from(e.statusMessage as string, 'utf8').subarray(0, msgBytes);
      let end = cut.length;
      while (end > 0 && (cut[end] & 0xc0) === 0x80) end--;
      cut = cut.subarray(0, end);
      cut.copy(buf, o);
      buf.fill(0x20, o + cut.length, o + msgBytes);
      o += msgBytes;
    }
  }
  if (flags & FLAG_TIMEOUT) o = writeVarint(buf, o, timeoutMs);
  if (flags & FLAG_HEADERS) {
    const hs = e.headers as Record<string, string>;
    const ks = keys as string[];
    const ls = lens as number[];
    o = writeVarint(buf, o, ks.length);
    for (let i = 0; i < ks.length; i++) {
      o = writeVarint(buf, o, ls[2 * i]);
      o += buf.write(ks[i], o, 'utf8');
      o = writeVarint(buf, o, ls[2 * i + 1]);
      o += buf.write(hs[ks[i]], o, 'utf8');
    }
  }
  body.copy(buf, o);
  return buf;
}
