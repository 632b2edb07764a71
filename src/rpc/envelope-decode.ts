/** Pure envelope decoder. Anything malformed or over a limit throws ProtocolError. */
import { ProtocolError } from '../common';
import {
  ENVELOPE_VERSION,
  MAX_HEADER_BYTES,
  MAX_HEADERS,
  MAX_STATUS_MESSAGE_BYTES,
} from './constants';
import type { Envelope } from './envelope-types';
import {
  EnvelopeKind,
  FLAG_HEADERS,
  FLAG_OP,
  FLAG_STATUS_MESSAGE,
  FLAG_TIMEOUT,
} from './envelope-types';
import type { VarintCursor as Cursor, VarintLimit } from '../common';
// straight from the module, not the index: a re-export is a getter call per use (hot path)
import { VARINT_MAX_U32, readVarint as readLimitedVarint } from '../common';

const KNOWN_FLAGS = FLAG_OP | FLAG_STATUS_MESSAGE | FLAG_TIMEOUT | FLAG_HEADERS;

/** Envelope varints (ids, ops, lengths, deadlines) are 32-bit. */
const ENVELOPE_VARINT: VarintLimit = {
  maxValue: VARINT_MAX_U32,
  maxBytes: 5,
  truncated: 'envelope truncated inside a varint',
  tooLarge: 'varint above 32 bits',
  tooLong: 'varint longer than 5 bytes',
};

function readVarint(c: Cursor): number {
  return readLimitedVarint(c, ENVELOPE_VARINT);
}

function readString(c: Cursor, len: number): string {
  if (c.pos + len > c.buf.length) throw new ProtocolError('envelope truncated inside a string');
  const s = c.buf.toString('utf8', c.pos, c.pos + len);
  c.pos += len;
  return s;
}

/** Decodes an envelope; `body` is a view into `buf` (no copy). */
export function decodeEnvelope(buf: Buffer): Envelope {
  if (buf.length < 4) throw new ProtocolError(`envelope of ${buf.length} bytes is too short`);
  const version = buf[0] >> 4;
  const kind = buf[0] & 0x0f;
  if (version !== ENVELOPE_VERSION)
    throw new ProtocolError(`envelope version ${version} is not supported`);
  if (kind < EnvelopeKind.REQUEST || kind > EnvelopeKind.CANCEL) {
    throw new ProtocolError(`unknown envelope kind ${kind}`);
  }
  const flags = buf[1];
  if ((flags & ~KNOWN_FLAGS) !== 0)
    throw new ProtocolError(`unknown envelope flags 0x${flags.toString(16)}`);
  const c: Cursor = { buf, pos: 2 };
  const id = readVarint(c);
  if (c.pos >= buf.length) throw new ProtocolError('envelope truncated before its status');
  const status = buf[c.pos++];
  if (status > 16) throw new ProtocolError(`unknown status code ${status}`);
  const op = flags & FLAG_OP ? readVarint(c) : 0;
  let statusMessage = '';
  if (flags & FLAG_STATUS_MESSAGE) {
    const len = readVarint(c);
    if (len > MAX_STATUS_MESSAGE_BYTES)
      throw new ProtocolError(`status message of ${len} bytes is too long`);
    statusMessage = readString(c, len);
  }
  const timeoutMs = flags & FLAG_TIMEOUT ? readVarint(c) : 0;
  const headers: Record<string, string> = {};
  if (flags & FLAG_HEADERS) {
    const n = readVarint(c);
    if (n > MAX_HEADERS) throw new ProtocolError(`${n} headers, above the limit of ${MAX_HEADERS}`);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const kl = readVarint(c);
      total += kl;
      if (total > MAX_HEADER_BYTES)
        throw new ProtocolError(`headers above ${MAX_HEADER_BYTES} bytes`);
      const k = readString(c, kl);
      const vl = readVarint(c);
      total += vl;
      if (total > MAX_HEADER_BYTES)
        throw new ProtocolError(`headers above ${MAX_HEADER_BYTES} bytes`);
      const v = readString(c, vl);
      // A key of __proto__ would replace the object's prototype: never a real header.
      if (k !== '__proto__') headers[k] = v;
    }
  }
  return { kind, id, op, status, statusMessage, timeoutMs, headers, body: buf.subarray(c.pos) };
}
