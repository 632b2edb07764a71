/**
 * Envelope codec speed, in process: encodes and decodes per second for a request with a
 * W3C traceparent header, an op and a remaining deadline, at 128 B and 16 KiB bodies.
 * Bounded in time (each loop about `ms`) and count.
 */
import { EnvelopeKind, decodeEnvelope, encodeEnvelope } from '../../src/rpc';

export interface CodecResult {
  encode_per_s: number;
  decode_per_s: number;
  envelope_bytes: number;
}

function timeLoop(ms: number, fn: () => void): number {
  const BATCH = 1000;
  let n = 0;
  const t0 = process.hrtime.bigint();
  const end = t0 + BigInt(ms) * 1_000_000n;
  let t = t0;
  while (t < end && n < 50_000_000) {
    for (let i = 0; i < BATCH; i++) fn();
    n += BATCH;
    t = process.hrtime.bigint();
  }
  return (n * 1e9) / Number(t - t0);
}

export function benchCodec(size: number, ms: number): CodecResult {
  const env = {
    op: 3,
    headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
    body: Buffer.alloc(size, 1),
  };
  let sink = 0;
  const encoded = encodeEnvelope(EnvelopeKind.REQUEST, 123456, 5000, env);
  timeLoop(
    Math.min(200, ms),
    () => (sink += encodeEnvelope(EnvelopeKind.REQUEST, 123456, 5000, env).length)
  );
  const enc = timeLoop(
    ms,
    () => (sink += encodeEnvelope(EnvelopeKind.REQUEST, 123456, 5000, env).length)
  );
  timeLoop(Math.min(200, ms), () => (sink += decodeEnvelope(encoded).id));
  const dec = timeLoop(ms, () => (sink += decodeEnvelope(encoded).id));
  if (sink === 42) process.stdout.write(''); // keep `sink` alive
  return { encode_per_s: enc, decode_per_s: dec, envelope_bytes: encoded.length - size };
}
