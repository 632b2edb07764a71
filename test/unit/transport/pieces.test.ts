import test from 'ava';
import fc from 'fast-check';
import { AckTracker } from '../../../src/transport/engine/ack-tracker';
import { RangeSet } from '../../../src/transport/engine/range-set';
import { SendBuffer } from '../../../src/transport/engine/send-buffer';
import { ReceiveBuffer } from '../../../src/transport/engine/receive-buffer';
import { newPacketPlan, packetize } from '../../../src/transport/engine/packetizer';
import {
  LostPacketMemory,
  SentPacket,
  SentPackets,
} from '../../../src/transport/engine/sent-packets';
import type { PacketizerContext } from '../../../src/transport/engine/packetizer';
import {
  ClusterKeys,
  buildHandshake,
  buildInitial,
  buildReset,
  deriveConnectionKeys,
  parseHandshake,
  parseInitial,
  selectAeadBackend,
  verifyReset,
} from '../../../src/transport/crypto/packet-protection';
import type {
  AeadAlgorithm,
  AeadBackend,
  DirectionKey,
} from '../../../src/transport/crypto/packet-protection';
import {
  STREAM_FRAME_OVERHEAD,
  decodeFrames,
  writeAckFrame,
  writeCloseFrame,
  writeDataHeader,
  writeMaxDataFrame,
  writeStreamFrameHeader,
} from '../../../src/transport/wire';
import type { AckFrame, CloseFrame } from '../../../src/transport/wire';
import { DATA_HEADER_LENGTH, TAG_LENGTH } from '../../../src/transport/wire';

/** A DATA packet as the engine builds it: header | frames sealed in place | tag. */
function sealPacket(key: DirectionKey, dcid: Buffer, pn: number, plain: string | Buffer): Buffer {
  const body = Buffer.from(plain);
  const packet = Buffer.alloc(DATA_HEADER_LENGTH + body.length + TAG_LENGTH);
  writeDataHeader(packet, dcid, pn);
  body.copy(packet, DATA_HEADER_LENGTH);
  key.seal(packet, DATA_HEADER_LENGTH, body.length, pn);
  return packet;
}

test('frames: decode(encode(x)) = x for every frame type', t => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 2 ** 40 }),
      fc.uint8Array({ maxLength: 300 }),
      fc.boolean(),
      fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: 1, maxLength: 10 }),
      (offset, data, fin, gaps) => {
        const buf = Buffer.alloc(4096);
        let pos = writeStreamFrameHeader(buf, 0, offset, data.length, fin);
        Buffer.from(data).copy(buf, pos);
        pos += data.length;
        const ranges: number[] = [];
        let hi = 1_000_000;
        for (const g of gaps) {
          ranges.push(hi, hi - g);
          hi = hi - g - 2;
        }
        pos = writeAckFrame(buf, pos, ranges, gaps.length, 1.5);
        pos = writeMaxDataFrame(buf, pos, offset + 12345);
        buf[pos++] = 0x01;
        const close: CloseFrame = {
          code: 7,
          receivedOffset: offset,
          finReceived: fin,
          reason: 'bye',
        };
        pos = writeCloseFrame(buf, pos, close);
        const seen: unknown[] = [];
        const ok = decodeFrames(
          buf.subarray(0, pos),
          {
            onPing: () => seen.push('ping'),
            onAck: (a: AckFrame) => seen.push({ ack: [...a.ranges], delay: a.ackDelayMs }),
            onStream: (o, d, f) => seen.push({ o, d: Buffer.from(d), f }),
            onMaxData: m => seen.push({ m }),
            onClose: c => seen.push(c),
          },
          { ackDelayMs: 0, ranges: [] }
        );
        t.true(ok);
        t.deepEqual(seen, [
          { o: offset, d: Buffer.from(data), f: fin },
          { ack: ranges, delay: 1.5 },
          { m: offset + 12345 },
          'ping',
          close,
        ]);
      }
    ),
    { numRuns: 50 }
  );
});

test('frames: truncated or garbage payloads are rejected, never thrown', t => {
  const buf = Buffer.alloc(100);
  const end = writeStreamFrameHeader(buf, 0, 5, 50, false) + 50;
  const sink = { onPing() {}, onAck() {}, onStream() {}, onMaxData() {}, onClose() {} };
  for (let n = 1; n < end; n++)
    t.false(decodeFrames(buf.subarray(0, n), sink, { ackDelayMs: 0, ranges: [] }));
  t.false(decodeFrames(Buffer.from([0x7f]), sink, { ackDelayMs: 0, ranges: [] }));
  // ACK ranges must descend
  const bad = Buffer.alloc(40);
  const p = writeAckFrame(bad, 0, [5, 1, 9, 7], 2, 0);
  t.false(decodeFrames(bad.subarray(0, p), sink, { ackDelayMs: 0, ranges: [] }));
});

test('handshake, keys and reset tokens: authenticated with the cluster secret', t => {
  const keys = new ClusterKeys(Buffer.from('a-cluster-secret-value'));
  const other = new ClusterKeys(Buffer.from('another-secret-value!!'));
  const params = {
    maxDatagramSize: 1400,
    initialMaxData: 1 << 20,
    idleTimeoutMs: 1000,
    maxAckDelayMs: 2,
  };
  const clientCid = Buffer.alloc(8, 1);
  const clientNonce = Buffer.alloc(16, 2);
  const initial = buildInitial(keys, { version: 1, clientCid, clientNonce, params }, 1200);
  t.is(initial.length, 1200);
  const info = parseInitial(keys, initial);
  t.false(typeof info === 'string');
  t.is(parseInitial(other, initial), 'bad_auth');
  const tampered = Buffer.from(initial);
  tampered[20] ^= 1;
  t.is(parseInitial(keys, tampered), 'bad_auth');
  t.is(parseInitial(keys, initial.subarray(0, 30)), 'malformed');
  const serverCid = Buffer.alloc(8, 3);
  const serverNonce = Buffer.alloc(16, 4);
  const hs = buildHandshake(
    keys,
    { version: 1, clientCid, serverCid, serverNonce, params },
    clientNonce
  );
  t.false(typeof parseHandshake(keys, hs, clientNonce) === 'string');
  t.is(parseHandshake(keys, hs, Buffer.alloc(16, 9)), 'bad_auth', 'bound to the client nonce');
  const c = deriveConnectionKeys(
    keys.secret,
    'chacha20-poly1305',
    'node:crypto',
    true,
    clientCid,
    serverCid,
    clientNonce,
    serverNonce
  );
  const s = deriveConnectionKeys(
    keys.secret,
    'chacha20-poly1305',
    'node:crypto',
    false,
    clientCid,
    serverCid,
    clientNonce,
    serverNonce
  );
  const packet = sealPacket(c.send, serverCid, 42, 'secret payload');
  t.is(s.receive.open(Buffer.from(packet), 42)?.toString(), 'secret payload');
  t.is(s.receive.open(Buffer.from(packet), 43), null, 'wrong packet number (nonce)');
  t.is(c.receive.open(Buffer.from(packet), 42), null, 'other direction key');
  const flipped = Buffer.from(packet);
  flipped[15] ^= 0x80;
  t.is(s.receive.open(flipped, 42), null, 'tampered ciphertext');
  const reset = buildReset(keys, serverCid);
  t.true(verifyReset(keys, reset, serverCid));
  t.false(verifyReset(other, reset, serverCid));
  t.false(verifyReset(keys, reset, clientCid));
});

test('AEAD backends: openssl (our addon) is picked, and all three seal and open each other', t => {
  // make build compiles the addon; sodium-native is an optional dependency CI installs
  t.is(selectAeadBackend('chacha20-poly1305'), 'openssl');
  t.is(selectAeadBackend('aes-256-gcm'), 'openssl', 'AES-256-GCM runs in OpenSSL too');
  t.is(selectAeadBackend('chacha20-poly1305', 'libsodium'), 'libsodium');
  t.is(selectAeadBackend('chacha20-poly1305', 'node'), 'node:crypto');
  t.is(selectAeadBackend('aes-256-gcm', 'node'), 'node:crypto');
  t.throws(() => selectAeadBackend('aes-256-gcm', 'libsodium'), { message: /chacha20-poly1305/ });
  const secret = Buffer.from('a-cluster-secret-value');
  const cids = [Buffer.alloc(8, 1), Buffer.alloc(8, 2)] as const;
  const nonces = [Buffer.alloc(16, 3), Buffer.alloc(16, 4)] as const;
  const keysFor = (alg: AeadAlgorithm, backend: AeadBackend, client: boolean) =>
    deriveConnectionKeys(secret, alg, backend, client, cids[0], cids[1], nonces[0], nonces[1]);
  const backends: AeadBackend[] = ['node:crypto', 'libsodium', 'openssl'];
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 0, maxLength: 1500 }),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.constantFrom(...backends),
      fc.constantFrom(...backends),
      fc.nat(),
      fc.constantFrom<AeadAlgorithm>('chacha20-poly1305', 'aes-256-gcm'),
      (plain, pn, sealer, opener, flip, alg) => {
        // libsodium runs ChaCha20 only; AES-256-GCM pairs go to node:crypto there
        const fix = (b: AeadBackend): AeadBackend =>
          alg === 'aes-256-gcm' && b === 'libsodium' ? 'node:crypto' : b;
        const c = keysFor(alg, fix(sealer), true);
        const s = keysFor(alg, fix(opener), false);
        const packet = sealPacket(c.send, cids[1], pn, Buffer.from(plain));
        const opened = s.receive.open(Buffer.from(packet), pn);
        t.true(
          opened !== null && opened.equals(Buffer.from(plain)),
          `${alg}: ${fix(sealer)} -> ${fix(opener)}`
        );
        const tampered = Buffer.from(packet);
        tampered[flip % tampered.length] ^= 1 + (flip % 255);
        t.is(s.receive.open(tampered, pn), null, 'any flipped byte, header included, is refused');
      }
    ),
    { numRuns: 300 }
  );
  t.is(keysFor('aes-256-gcm', 'node:crypto', true).send.backend, 'node:crypto');
  t.is(keysFor('chacha20-poly1305', 'libsodium', true).send.backend, 'libsodium');
  t.is(keysFor('aes-256-gcm', 'openssl', true).send.backend, 'openssl');
});

test('lost packet memory: an ACK range finds exactly the remembered packets inside it', t => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 500 }), { maxLength: 80 }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 520 }), fc.integer({ min: 0, max: 40 })), {
        maxLength: 6,
      }),
      (lostPns, rawRanges) => {
        const capacity = 32;
        const mem = new LostPacketMemory(capacity);
        let model: number[] = [];
        for (const pn of new Set(lostPns)) {
          const p = new SentPacket();
          p.pn = pn;
          mem.add(p);
          model.push(pn);
          model.sort((a, b) => a - b);
          if (model.length > capacity) model.shift();
        }
        t.is(mem.size, model.length);
        // disjoint, descending ranges as in an ACK frame
        const ranges: number[] = [];
        let top = 600;
        for (const [gap, len] of rawRanges) {
          const hi = top - 1 - (gap % 60);
          const lo = Math.max(0, hi - len);
          if (hi < 0) break;
          ranges.push(hi, lo);
          top = lo - 1;
          if (top <= 0) break;
        }
        const found: number[] = [];
        mem.takeAcked(ranges, p => found.push(p.pn));
        const inRange = (pn: number): boolean => {
          for (let k = 0; k < ranges.length; k += 2)
            if (pn <= ranges[k] && pn >= ranges[k + 1]) return true;
          return false;
        };
        t.deepEqual(
          [...found].sort((a, b) => a - b),
          model.filter(inRange)
        );
        model = model.filter(pn => !inRange(pn));
        t.is(mem.size, model.length, 'found packets are forgotten');
        mem.takeAcked(ranges, () => t.fail('taken twice'));
      }
    )
  );
});

test('range set: add merges and counts new members', t => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 20 }))),
      adds => {
        const rs = new RangeSet();
        const model = new Set<number>();
        for (const [s, len] of adds) {
          let fresh = 0;
          for (let x = s; x < s + len; x++) if (!model.has(x)) fresh++;
          for (let x = s; x < s + len; x++) model.add(x);
          t.is(rs.add(s, s + len), fresh);
        }
        for (let x = 0; x < 230; x++) t.is(rs.contains(x), model.has(x));
        const r = rs.r;
        for (let i = 2; i < r.length; i += 2)
          t.true(r[i] > r[i - 1], 'disjoint, non-adjacent, sorted');
      }
    ),
    { numRuns: 100 }
  );
});

test('ack tracker: every 2nd packet or on a gap, duplicates refused', t => {
  const a = new AckTracker(2);
  a.onPacket(0, true, 0);
  t.false(a.ackNeeded(0));
  t.is(a.deadline(), 2, 'max ack delay');
  a.onPacket(1, true, 0.1);
  t.true(a.ackNeeded(0.1), 'second ack-eliciting packet');
  const buf = Buffer.alloc(200);
  a.writeFrame(buf, 0, 0.2);
  t.false(a.ackNeeded(0.2));
  a.onPacket(5, true, 0.3);
  t.true(a.ackNeeded(0.3), 'gap: immediate');
  t.true(a.isDuplicate(1));
  t.true(a.isDuplicate(5));
  t.false(a.isDuplicate(3));
  const end = a.writeFrame(buf, 0, 0.3);
  const acks: number[][] = [];
  decodeFrames(
    buf.subarray(0, end),
    {
      onPing() {},
      onAck: f => acks.push([...f.ranges]),
      onStream() {},
      onMaxData() {},
      onClose() {},
    },
    { ackDelayMs: 0, ranges: [] }
  );
  t.deepEqual(acks, [[5, 5, 1, 0]]);
});

test('packetizer: bounded by cwnd, peer window, pacing and amplification; probes bypass cwnd', t => {
  const sb = new SendBuffer();
  sb.write(Buffer.alloc(100_000, 1));
  const ctx: PacketizerContext = {
    cwnd: 10_000,
    bytesInFlight: 0,
    peerMaxData: 1_000_000,
    packetSpace: 1000,
    packetOverhead: 29,
    firstPacketReserved: 0,
    pacingBudget: Infinity,
    amplificationBudget: Infinity,
    maxPackets: 1000,
    probe: false,
  };
  const plan = newPacketPlan();
  const n = packetize(ctx, sb, plan);
  t.is(n, 10, 'cwnd 10000 / ~1029 per packet, last one may overshoot (RFC 9002 §7)');
  t.is(plan.frames[1], 1000 - STREAM_FRAME_OVERHEAD);
  const sb2 = new SendBuffer();
  sb2.write(Buffer.alloc(100_000, 1));
  t.is(
    packetize({ ...ctx, cwnd: 1e9, peerMaxData: 2500 }, sb2, plan),
    3,
    'flow control: 2500 bytes'
  );
  t.is(sb2.sentOffset, 2500);
  const sb3 = new SendBuffer();
  sb3.write(Buffer.alloc(100_000, 1));
  t.is(packetize({ ...ctx, cwnd: 1e9, pacingBudget: 2000 }, sb3, plan), 2, 'pacing budget');
  const k = packetize({ ...ctx, cwnd: 1e9, amplificationBudget: 1500 }, sb3, plan);
  let bytes = 0;
  for (let i = 0; i < plan.frames.length; i += 4)
    bytes += plan.frames[i + 1] + STREAM_FRAME_OVERHEAD;
  t.true(bytes + k * 29 <= 1500, 'anti-amplification: never beyond the budget');
  t.is(
    packetize({ ...ctx, bytesInFlight: 20_000, probe: true, maxPackets: 2 }, sb3, plan),
    2,
    'probes'
  );
});

test('send/receive buffers: retransmit only unacknowledged ranges; reassembly is bounded', t => {
  const sb = new SendBuffer();
  sb.write(Buffer.from('abcdefghij'));
  sb.finish();
  const out = [0, 0, 0, 0];
  t.true(sb.next(4, 100, out));
  t.deepEqual(out, [0, 4, 0, 0]);
  t.true(sb.next(100, 100, out));
  t.deepEqual(out, [4, 6, 1, 0], 'FIN rides on the last range');
  sb.onAcked(4, 6, true);
  sb.onLost(0, 4, false);
  sb.onLost(4, 6, true);
  t.true(sb.next(100, 100, out));
  t.deepEqual(out, [0, 4, 0, 1], 'only the unacknowledged range comes back');
  t.false(sb.next(100, 100, out));
  sb.onAcked(0, 4, false);
  t.true(sb.allAcked());
  const rb = new ReceiveBuffer(10);
  t.is(rb.onFrame(5, Buffer.from('fghij'), true), 'ok');
  t.is(rb.onFrame(8, Buffer.from('ijk'), false), 'flow_control', 'beyond the window');
  t.is(rb.read(), null, 'gap at 0');
  t.is(rb.onFrame(0, Buffer.from('abcde'), false), 'ok');
  t.is(rb.onFrame(0, Buffer.from('abcde'), false), 'duplicate');
  t.is(Buffer.concat([rb.read() as Buffer, rb.read() as Buffer]).toString(), 'abcdefghij');
  t.true(rb.finRead());
});

test('SentPackets: persistent congestion needs a lost span >= the duration, no ACK inside, after the first RTT sample', t => {
  const build = (acked: number[]): SentPackets => {
    const s = new SentPackets();
    for (let pn = 0; pn <= 12; pn++) {
      const p = new SentPacket();
      p.pn = pn;
      p.timeSent = pn * 10;
      p.size = 1000;
      p.ackEliciting = true;
      p.inFlight = true;
      s.add(p);
    }
    for (const pn of [...acked, 12]) s.markAcked(s.get(pn) as SentPacket);
    s.largestAcked = 12;
    return s;
  };
  const lost: number[] = [];
  // packets 1..11 lost (sent 10..110 ms): span 100 ms
  let s = build([0]);
  s.detectLost(200, 10, 10, p => lost.push(p.pn), 90, 5);
  t.is(lost.length, 11);
  t.true(s.persistentCongestion, 'span 100 >= 90');
  s = build([0]);
  s.detectLost(200, 10, 10, () => {}, 120, 5);
  t.false(s.persistentCongestion, 'span 100 < 120');
  s = build([0, 6]);
  s.detectLost(200, 10, 10, () => {}, 90, 5);
  t.false(s.persistentCongestion, 'an acknowledged packet inside breaks the run (50 ms runs)');
  s = build([0]);
  s.detectLost(200, 10, 10, () => {}, 90, 50);
  t.false(s.persistentCongestion, 'losses before the first RTT sample do not count');
});
