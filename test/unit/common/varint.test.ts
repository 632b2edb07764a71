import test from 'ava';
import { ProtocolError } from '../../../src/common';
import {
  VARINT_MAX_SAFE,
  VARINT_MAX_U32,
  readVarint,
  varintLimit,
  varintSize,
  writeVarint,
} from '../../../src/common/varint';

const SAFE = varintLimit(VARINT_MAX_SAFE, 'test body');
const U32 = varintLimit(VARINT_MAX_U32, 'test envelope');

function encode(v: number): Buffer {
  const buf = Buffer.alloc(10, 0xee);
  const end = writeVarint(buf, 0, v);
  return buf.subarray(0, end);
}

/** The plain LEB128 encoding, with BigInt so it is exact above 2^32. */
function reference(v: number): Buffer {
  const out: number[] = [];
  let n = BigInt(v);
  while (n >= 0x80n) {
    out.push(Number(n & 0x7fn) | 0x80);
    n >>= 7n;
  }
  out.push(Number(n));
  return Buffer.from(out);
}

const EDGES = [
  0,
  1,
  0x7f,
  0x80,
  0x3fff,
  0x4000,
  0x1fffff,
  0x200000,
  0xfffffff,
  0x10000000,
  2 ** 31 - 1,
  2 ** 31,
  VARINT_MAX_U32,
  2 ** 32,
  2 ** 35 - 1,
  2 ** 35,
  2 ** 42,
  2 ** 49 - 1,
  2 ** 49,
  2 ** 52 + 12345,
  VARINT_MAX_SAFE,
];

test('round trip at every size boundary up to 2^53 - 1; size and bytes match plain LEB128', t => {
  for (const v of EDGES) {
    const enc = encode(v);
    t.deepEqual(enc, reference(v), `encoding of ${v}`);
    t.is(varintSize(v), enc.length, `size of ${v}`);
    const c = { buf: enc, pos: 0 };
    t.is(readVarint(c, SAFE), v);
    t.is(c.pos, enc.length);
  }
  t.is(varintSize(VARINT_MAX_U32), 5);
  t.is(varintSize(VARINT_MAX_SAFE), 8);
});

test('reads at an offset and leaves the cursor after the varint', t => {
  const buf = Buffer.concat([Buffer.from([9, 9]), encode(300), Buffer.from([7])]);
  const c = { buf, pos: 2 };
  t.is(readVarint(c, U32), 300);
  t.is(c.pos, 4);
  t.is(buf[c.pos], 7);
});

test('2^53 and above are rejected by the safe limit; 2^32 by the 32-bit limit', t => {
  // 2^53 exactly: 7 bytes of continuation zeros then 0x10 (8 bytes, within maxBytes)
  const twoTo53 = reference(2 ** 53);
  t.is(twoTo53.length, 8);
  const e = t.throws(() => readVarint({ buf: twoTo53, pos: 0 }, SAFE), {
    instanceOf: ProtocolError,
  });
  t.regex(e.message, /above 9007199254740991 in test body/);
  t.throws(() => readVarint({ buf: reference(2 ** 32), pos: 0 }, U32), {
    instanceOf: ProtocolError,
    message: /above 4294967295/,
  });
  t.is(readVarint({ buf: reference(VARINT_MAX_U32), pos: 0 }, U32), VARINT_MAX_U32);
});

test('over-long varints (more bytes than the limit allows) are rejected', t => {
  // nine continuation bytes: longer than any 8-byte safe value
  const nine = Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
  t.throws(() => readVarint({ buf: nine, pos: 0 }, SAFE), {
    instanceOf: ProtocolError,
    message: 'varint longer than 8 bytes in test body',
  });
  // a 6-byte encoding of a small value is still too long for a 32-bit field
  const six = Buffer.from([0x81, 0x80, 0x80, 0x80, 0x80, 0x00]);
  t.throws(() => readVarint({ buf: six, pos: 0 }, U32), {
    instanceOf: ProtocolError,
    message: 'varint longer than 5 bytes in test envelope',
  });
  // redundant zero continuation within the byte limit is accepted (as protobuf does)
  t.is(readVarint({ buf: Buffer.from([0x81, 0x00]), pos: 0 }, U32), 1);
});

test('truncated varints are rejected, wherever they stop', t => {
  const full = encode(2 ** 40 + 5);
  for (let n = 0; n < full.length; n++) {
    t.throws(() => readVarint({ buf: full.subarray(0, n), pos: 0 }, SAFE), {
      instanceOf: ProtocolError,
      message: 'test body truncated inside a varint',
    });
  }
  // the cursor reaching the end of a larger buffer counts too
  t.throws(() => readVarint({ buf: Buffer.from([1, 0x80]), pos: 1 }, SAFE), {
    instanceOf: ProtocolError,
  });
});

test('a limit must be a safe non-negative integer', t => {
  t.throws(() => varintLimit(2 ** 53, 'x'), { instanceOf: RangeError });
  t.throws(() => varintLimit(-1, 'x'), { instanceOf: RangeError });
  t.is(varintLimit(127, 'x').maxBytes, 1);
});
