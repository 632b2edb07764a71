/**
 * The binary bodies of the IDEMPOTENCY_* peer ops (src/node/idempotency-codec.ts): every
 * body round-trips, and a body cut short, over a bound, with an unknown kind or flag, or
 * with bytes left over is a ProtocolError that names the op.
 */
import test from 'ava';
import { ProtocolError } from '../../../src/common';
import {
  MAX_CLAIM_TOKEN_BYTES,
  MAX_IDEMPOTENCY_KEY_BYTES,
  SCOPE_BYTES,
  decodeClaim,
  decodeClaimAnswer,
  decodeComplete,
  decodeLookup,
  decodeLookupAnswer,
  decodeRecord,
  encodeClaim,
  encodeClaimAnswer,
  encodeComplete,
  encodeLookup,
  encodeLookupAnswer,
  encodeRecord,
} from '../../../src/node/idempotency-codec';
import type { OwnerAnswer } from '../../../src/node/idempotency-codec';
import { MAX_MESSAGE_ID_BYTES } from '../../../src/node/validation';

const longestKey = 'k'.repeat(MAX_IDEMPOTENCY_KEY_BYTES + SCOPE_BYTES);

test('every body round-trips, ASCII and not, small and at its bounds', t => {
  for (const key of ['order-1', 'clé-ü-€-😀', longestKey, '']) {
    const claim = { key, token: 'node-a.XyZ12345.7', leaseMs: 35_000 };
    t.deepEqual(decodeClaim(encodeClaim(claim)), claim);
    const complete = {
      key,
      token: 't'.repeat(MAX_CLAIM_TOKEN_BYTES),
      ok: true,
      id: 'i'.repeat(MAX_MESSAGE_ID_BYTES),
      delivered: 0xffffffff,
      replicaHeld: true,
    };
    t.deepEqual(decodeComplete(encodeComplete(complete)), complete);
    const failed = { key, token: 'x', ok: false, id: '', delivered: 0, replicaHeld: false };
    t.deepEqual(decodeComplete(encodeComplete(failed)), failed);
    const record = { key, id: 'm-1', delivered: 3, remainingMs: 120_000 };
    t.deepEqual(decodeRecord(encodeRecord(record)), record);
    t.deepEqual(decodeLookupAnswer(encodeLookupAnswer(record)), record);
    t.is(decodeLookup(encodeLookup(key)), key);
  }
  t.is(decodeLookupAnswer(encodeLookupAnswer(undefined)), undefined);
  const answers: OwnerAnswer[] = [
    { kind: 'new' },
    { kind: 'pending' },
    { kind: 'full' },
    { kind: 'duplicate', id: 'msg-ü-1', delivered: 2 },
    { kind: 'unverified', replica: 'meshwire-2' },
  ];
  for (const a of answers) t.deepEqual(decodeClaimAnswer(encodeClaimAnswer(a)), a);
  // A completion without the flag decodes as not held.
  const plain = decodeComplete(
    encodeComplete({ key: 'k', token: 't', ok: true, id: 'i', delivered: 1 })
  );
  t.false(plain.replicaHeld);
});

test('binary, not JSON: a claim of a short key is a few bytes', t => {
  const body = encodeClaim({ key: 'order-1', token: 'a.b.1', leaseMs: 35_000 });
  t.is(body.length, 3 + 1 + 7 + 1 + 5);
});

test('every truncation of every body is a ProtocolError naming its op', t => {
  const bodies: Array<[string, Buffer, (b: Buffer) => unknown]> = [
    ['IDEMPOTENCY_CLAIM', encodeClaim({ key: 'key', token: 'tok', leaseMs: 300 }), decodeClaim],
    [
      'IDEMPOTENCY_CLAIM answer',
      encodeClaimAnswer({ kind: 'duplicate', id: 'id-1', delivered: 300 }),
      decodeClaimAnswer,
    ],
    [
      'IDEMPOTENCY_CLAIM answer',
      encodeClaimAnswer({ kind: 'unverified', replica: 'node-b' }),
      decodeClaimAnswer,
    ],
    [
      'IDEMPOTENCY_COMPLETE',
      encodeComplete({ key: 'key', token: 'tok', ok: true, id: 'id', delivered: 300 }),
      decodeComplete,
    ],
    [
      'IDEMPOTENCY_REPLICATE',
      encodeRecord({ key: 'key', id: 'id', delivered: 1, remainingMs: 120_000 }),
      decodeRecord,
    ],
    ['IDEMPOTENCY_LOOKUP', encodeLookup('key'), decodeLookup],
    [
      'IDEMPOTENCY_LOOKUP answer',
      encodeLookupAnswer({ key: 'key', id: 'id', delivered: 1, remainingMs: 9 }),
      decodeLookupAnswer,
    ],
  ];
  for (const [what, body, decode] of bodies) {
    // Length 0 of a lookup answer means "no record"; every other cut is an error.
    const from = what === 'IDEMPOTENCY_LOOKUP answer' ? 1 : 0;
    for (let n = from; n < body.length; n++) {
      const err = t.throws(() => decode(body.subarray(0, n)), { instanceOf: ProtocolError });
      t.true(err?.message.startsWith(what), `${what} cut to ${n}: ${err?.message}`);
    }
    // And one byte too many.
    t.throws(() => decode(Buffer.concat([body, Buffer.from([0])])), {
      instanceOf: ProtocolError,
      message: `${what}: 1 bytes after the end`,
    });
  }
});

test('oversized strings, a zero lease, unknown kinds and flags are refused', t => {
  t.throws(() => decodeClaim(encodeClaim({ key: `${longestKey}x`, token: 't', leaseMs: 1 })), {
    instanceOf: ProtocolError,
    message: `IDEMPOTENCY_CLAIM: key is ${longestKey.length + 1} bytes, over ${longestKey.length}`,
  });
  t.throws(
    () =>
      decodeClaim(
        encodeClaim({ key: 'k', token: 't'.repeat(MAX_CLAIM_TOKEN_BYTES + 1), leaseMs: 1 })
      ),
    { instanceOf: ProtocolError, message: /IDEMPOTENCY_CLAIM: token is 257 bytes, over 256/ }
  );
  t.throws(() => decodeClaim(encodeClaim({ key: 'k', token: 't', leaseMs: 0 })), {
    instanceOf: ProtocolError,
    message: 'IDEMPOTENCY_CLAIM: lease of 0 ms',
  });
  t.throws(
    () =>
      decodeComplete(
        encodeComplete({
          key: 'k',
          token: 't',
          ok: true,
          id: 'i'.repeat(MAX_MESSAGE_ID_BYTES + 1),
          delivered: 1,
        })
      ),
    { instanceOf: ProtocolError, message: /IDEMPOTENCY_COMPLETE: id is 257 bytes/ }
  );
  t.throws(() => decodeClaimAnswer(Buffer.from([9])), {
    instanceOf: ProtocolError,
    message: 'IDEMPOTENCY_CLAIM answer: unknown kind 9',
  });
  t.throws(() => decodeClaimAnswer(Buffer.alloc(0)), {
    instanceOf: ProtocolError,
    message: 'IDEMPOTENCY_CLAIM answer truncated',
  });
  const complete = encodeComplete({ key: 'k', token: 't', ok: true, id: 'i', delivered: 1 });
  complete[0] |= 4;
  t.throws(() => decodeComplete(complete), {
    instanceOf: ProtocolError,
    message: 'IDEMPOTENCY_COMPLETE: unknown flags 5',
  });
  // A delivered count over 32 bits, and a varint longer than its bound.
  const record = Buffer.concat([
    encodeLookup('k'),
    encodeLookup('i'),
    Buffer.from([0x80, 0x80, 0x80, 0x80, 0x10, 1]),
  ]);
  t.throws(() => decodeRecord(record), {
    instanceOf: ProtocolError,
    message: 'varint above 4294967295 in IDEMPOTENCY_REPLICATE',
  });
  const tooLong = Buffer.concat([Buffer.alloc(9, 0xff), Buffer.from([1])]);
  t.throws(() => decodeClaim(tooLong), {
    instanceOf: ProtocolError,
    message: 'varint longer than 8 bytes in IDEMPOTENCY_CLAIM',
  });
  // The old JSON bodies are refused, not misread.
  t.throws(() => decodeClaim(Buffer.from('{"k":"a","t":"b","l":5}')), {
    instanceOf: ProtocolError,
  });
});
