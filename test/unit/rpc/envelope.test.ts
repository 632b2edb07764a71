import test from 'ava';
import fc from 'fast-check';
import {
  EnvelopeKind,
  StatusCode,
  decodeEnvelope,
  encodeEnvelope,
  errorOfStatus,
  statusOfError,
} from '../../../src/rpc';
import { NotFoundError } from '../../../src/common';

test('golden bytes: a request with op, timeout, one header and a body', t => {
  const b = encodeEnvelope(EnvelopeKind.REQUEST, 300, 1500, {
    op: 7,
    headers: { tp: 'x' },
    body: Buffer.from('hi'),
  });
  // 0x11 v1/request, flags op|timeout|headers, id 300 = ac 02, status 0, op 7,
  // timeout 1500 = dc 0b, 1 header: 02 'tp' 01 'x', body 'hi'
  t.is(b.toString('hex'), '110dac0200' + '07' + 'dc0b' + '01' + '027470' + '0178' + '6869');
});

test('a minimal request costs 5 bytes of envelope', t => {
  const b = encodeEnvelope(EnvelopeKind.REQUEST, 100, 0, { body: Buffer.alloc(128) });
  t.is(b.length, 128 + 4);
  const r = encodeEnvelope(EnvelopeKind.REQUEST, 100, 1000, { body: Buffer.alloc(128) });
  t.is(r.length, 128 + 6);
});

const envArb = fc.record({
  kind: fc.constantFrom(EnvelopeKind.REQUEST, EnvelopeKind.RESPONSE, EnvelopeKind.ONEWAY),
  id: fc.nat({ max: 0xffffffff }),
  op: fc.nat({ max: 0xffffffff }),
  status: fc.integer({ min: 0, max: 16 }),
  statusMessage: fc.string({ maxLength: 40 }),
  timeoutMs: fc.nat({ max: 0xffffffff }),
  headers: fc.dictionary(
    fc.string({ maxLength: 12 }).filter(k => k !== '__proto__'),
    fc.string({ maxLength: 30 }),
    { maxKeys: 8 }
  ),
  body: fc.uint8Array({ maxLength: 200 }).map(u => Buffer.from(u)),
});

test('property: decode(encode(e)) = e', t => {
  fc.assert(
    fc.property(envArb, e => {
      const d = decodeEnvelope(encodeEnvelope(e.kind, e.id, e.timeoutMs, e));
      t.deepEqual({ ...d, body: d.body.toString('hex') }, { ...e, body: e.body.toString('hex') });
    }),
    { numRuns: 500 }
  );
});

test('property: decoding arbitrary bytes returns an envelope or throws ProtocolError, nothing else', t => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), bytes => {
      try {
        decodeEnvelope(Buffer.from(bytes));
      } catch (err) {
        t.is((err as Error).name, 'ProtocolError');
      }
    }),
    { numRuns: 2000 }
  );
});

test('truncations of a valid envelope are ProtocolErrors', t => {
  const b = encodeEnvelope(EnvelopeKind.RESPONSE, 1234567, 0, {
    status: StatusCode.NOT_FOUND,
    statusMessage: 'nope',
    headers: { a: 'b' },
  });
  for (let n = 0; n < b.length; n++) {
    t.throws(() => decodeEnvelope(b.subarray(0, n)), { name: 'ProtocolError' }, `cut at ${n}`);
  }
});

test('bad version, kind, flags and status are ProtocolErrors', t => {
  for (const hex of ['2100000000', '1500000000', '1180000000', '1100001100']) {
    t.throws(() => decodeEnvelope(Buffer.from(hex, 'hex')), { name: 'ProtocolError' }, hex);
  }
});

test('a __proto__ header cannot replace the prototype', t => {
  const hdr = Buffer.from('__proto__');
  const b = Buffer.concat([
    Buffer.from('110800', 'hex'),
    Buffer.from([0, 1, hdr.length]),
    hdr,
    Buffer.from([1, 0x78]),
  ]);
  const e = decodeEnvelope(b);
  t.is(Object.getPrototypeOf(e.headers), Object.prototype);
  t.deepEqual(Object.keys(e.headers), []);
});

test('encoding refuses too many or too large headers', t => {
  const many: Record<string, string> = {};
  for (let i = 0; i < 65; i++) many[`h${i}`] = 'v';
  t.throws(() => encodeEnvelope(EnvelopeKind.REQUEST, 1, 0, { headers: many }), {
    name: 'InvalidArgumentError',
  });
  t.throws(
    () => encodeEnvelope(EnvelopeKind.REQUEST, 1, 0, { headers: { big: 'x'.repeat(17000) } }),
    {
      name: 'InvalidArgumentError',
    }
  );
});

test('status codes map to our errors and back', t => {
  t.is(statusOfError(new NotFoundError('x')), StatusCode.NOT_FOUND);
  t.is(statusOfError(new Error('plain')), StatusCode.UNKNOWN);
  t.is(errorOfStatus(StatusCode.RESOURCE_EXHAUSTED, 'full').name, 'ResourceExhaustedError');
  t.is(errorOfStatus(StatusCode.DEADLINE_EXCEEDED, '').code, 'DEADLINE_EXCEEDED');
  t.is(errorOfStatus(StatusCode.UNKNOWN, 'x').name, 'InternalError');
});
