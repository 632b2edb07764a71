import test from 'ava';
import fc from 'fast-check';
import { FrameDecoder, FrameType, encodeFrame } from '../../../src/mux';
import type { Frame } from '../../../src/mux';

test('golden bytes: DATA, PING, PONG, CLOSE', t => {
  const data = encodeFrame({
    type: FrameType.DATA,
    channelId: 0x0102,
    eof: true,
    payload: Buffer.from('hi'),
  });
  t.is(data.toString('hex'), '00010102' + '00000002' + '6869');
  const ping = encodeFrame({ type: FrameType.PING, nonce: 0xdeadbeef });
  t.is(ping.toString('hex'), '0100000000000004deadbeef');
  const pong = encodeFrame({ type: FrameType.PONG, nonce: 1 });
  t.is(pong.toString('hex'), '020000000000000400000001');
  const close = encodeFrame({ type: FrameType.CLOSE, reason: 'bye' });
  t.is(close.toString('hex'), '0300000000000003' + Buffer.from('bye').toString('hex'));
});

const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({
    type: fc.constant(FrameType.DATA as const),
    channelId: fc.integer({ min: 0, max: 0xffff }),
    eof: fc.boolean(),
    payload: fc.uint8Array({ maxLength: 300 }).map(u => Buffer.from(u)),
  }),
  fc.record({ type: fc.constant(FrameType.PING as const), nonce: fc.nat({ max: 0xffffffff }) }),
  fc.record({ type: fc.constant(FrameType.PONG as const), nonce: fc.nat({ max: 0xffffffff }) }),
  fc.record({ type: fc.constant(FrameType.CLOSE as const), reason: fc.string({ maxLength: 60 }) })
);

function norm(f: Frame): unknown {
  return f.type === FrameType.DATA ? { ...f, payload: f.payload.toString('hex') } : f;
}

test('decode(encode(frames)) = frames, whatever the chunking', t => {
  fc.assert(
    fc.property(
      fc.array(frameArb, { maxLength: 20 }),
      fc.array(fc.integer({ min: 1, max: 50 })),
      (frames, cuts) => {
        const wire = Buffer.concat(frames.map(encodeFrame));
        const dec = new FrameDecoder();
        const out: Frame[] = [];
        let o = 0;
        let i = 0;
        while (o < wire.length) {
          const n = cuts.length > 0 ? cuts[i++ % cuts.length] : wire.length;
          out.push(...dec.write(wire.subarray(o, o + n)));
          o += n;
        }
        t.deepEqual(out.map(norm), frames.map(norm));
        t.is(dec.bufferedBytes, 0);
      }
    ),
    { numRuns: 300 }
  );
});

test('byte-by-byte: a frame appears exactly when its last byte arrives', t => {
  const wire = Buffer.concat([
    encodeFrame({ type: FrameType.PING, nonce: 7 }),
    encodeFrame({ type: FrameType.DATA, channelId: 3, eof: false, payload: Buffer.from('abc') }),
  ]);
  const dec = new FrameDecoder();
  const at: number[] = [];
  for (let i = 0; i < wire.length; i++) {
    if (dec.write(wire.subarray(i, i + 1)).length > 0) at.push(i);
  }
  t.deepEqual(at, [11, 22]);
});

test('a frame payload above the limit is a ProtocolError, before its bytes arrive', t => {
  const dec = new FrameDecoder({ maxFramePayloadBytes: 100 });
  const hdr = Buffer.from('0000000100000065', 'hex'); // DATA ch 1, 101 bytes
  const err = t.throws(() => dec.write(hdr));
  t.is(err?.name, 'ProtocolError');
  t.throws(() => dec.write(Buffer.alloc(1)), { name: 'ProtocolError' });
});

test('malformed headers are ProtocolErrors: unknown type, bad flags, bad ping length, channel on control', t => {
  for (const hex of [
    '0900000000000000',
    '0082000100000000',
    '0100000000000003',
    '0200000500000004',
  ]) {
    t.throws(
      () => new FrameDecoder().write(Buffer.from(hex.padEnd(40, '0'), 'hex')),
      { name: 'ProtocolError' },
      hex
    );
  }
});

test('the decoder buffer limit holds', t => {
  const dec = new FrameDecoder({ maxFramePayloadBytes: 1000, maxBufferBytes: 500 });
  dec.write(Buffer.from('00000001000003e8', 'hex'));
  t.throws(() => dec.write(Buffer.alloc(600)), { name: 'ProtocolError' });
});

test('a close reason is cut to 256 bytes without splitting a character', t => {
  const f = encodeFrame({ type: FrameType.CLOSE, reason: 'é'.repeat(200) });
  const [out] = new FrameDecoder().write(f);
  t.is(out.type, FrameType.CLOSE);
  if (out.type === FrameType.CLOSE) t.is(out.reason, 'é'.repeat(128));
});
