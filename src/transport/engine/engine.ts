/**
 * The per-connection engine (kcp-style): no I/O, no timers. The owner
 * feeds datagrams with `input(datagram, now)`, calls `tick(now)` at `nextDeadline()` (and
 * after inputs/writes), and receives datagrams through the injected `send`.
 *
 * Handshake (one round trip): the client sends INITIAL (MAC'd with the cluster secret);
 * the server answers HANDSHAKE (MAC'd, bound to the client's nonce); both derive AEAD keys
 * with HKDF. Every later packet is DATA: AEAD-protected frames under a fresh packet number.
 */
import { randomBytes } from 'node:crypto';
import { ConnectionClosedError, ProtocolError, UnavailableError } from '../../common/errors';
import { DropCounter } from '../../common/drops';
import { LATENCY_TRACE, Stage, traceMark, tracePending, traceNow } from '../../common/latency-trace';
import { AckTracker } from './ack-tracker';
import {
  AMPLIFICATION_FACTOR,
  HANDSHAKE_INITIAL_TIMEOUT_MS,
  INITIAL_PADDED_SIZE,
  MAX_PACKET_THRESHOLD,
  MAX_PTO_BACKOFF,
  MAX_PTO_MS,
  PROTOCOL_VERSION,
} from '../constants';
import { createCongestionController } from '../congestion';
import type { CongestionAlgorithm, CongestionController, RateSample } from '../congestion';
import { Pacer } from './pacer';
import { newPacketPlan, packetize } from './packetizer';
import {
  buildHandshake,
  buildInitial,
  deriveConnectionKeys,
  parseHandshake,
  verifyReset,
} from '../crypto/packet-protection';
import type {
  AeadAlgorithm,
  AeadBackend,
  ClusterKeys,
  ConnectionKeys,
  InitialInfo,
} from '../crypto/packet-protection';
import { ReceiveBuffer } from './receive-buffer';
import { RttEstimator } from './rtt-estimator';
import { SendBuffer } from './send-buffer';
import { PacketState, SentPacket, SentPackets } from './sent-packets';
import {
  CLOSE_FRAME_OVERHEAD,
  DATA_HEADER_LENGTH,
  FrameType,
  MAX_CLOSE_REASON_BYTES,
  MAX_DATA_FRAME_LENGTH,
  MAX_PACKET_NUMBER,
  NONCE_LENGTH,
  PacketType,
  TAG_LENGTH,
  decodeFrames,
  writeCloseFrame,
  writeDataHeader,
  writeMaxDataFrame,
  writeStreamFrameHeader,
} from '../wire';
import type { AckFrame, CloseFrame, FrameSink, TransportParams } from '../wire';

/** Close codes carried in CLOSE frames. */
export const CloseCode = {
  NO_ERROR: 0,
  INTERNAL: 1,
  PROTOCOL_VIOLATION: 2,
  FLOW_CONTROL: 3,
  APPLICATION: 16,
} as const;

/** Reasons a connection drops a datagram. */
export type EngineDropReason =
  | 'bad_auth'
  | 'malformed'
  | 'replay'
  | 'version'
  | 'duplicate_handshake'
  | 'closed'
  | 'amplification'
  | 'flow_control'
  | 'not_ready';

export interface EngineInit {
  role: 'client' | 'server';
  localCid: Buffer;
  clusterKeys: ClusterKeys;
  aead: AeadAlgorithm;
  aeadBackend: AeadBackend;
  /** Our transport parameters (max datagram size, receive window, idle timeout, ack delay). */
  params: TransportParams;
  congestion: CongestionAlgorithm;
  /** Unacknowledged bytes held before the writer is told to wait. */
  sendBufferBytes: number;
  /** PING after this long without sending (0 = off). */
  keepAliveMs: number;
  /** Max packets built per flush. */
  maxPacketsPerFlush?: number;
  /** Source of randomness (nonces); injectable for deterministic tests. */
  random?: (n: number) => Buffer;
}

export interface EngineEvents {
  /** Client: handshake done. Server: the client proved it has the keys (address validated). */
  onEstablished(): void;
  /** Stream bytes (or the end of the stream) are ready for read(). */
  onReadable(): void;
  /** The send buffer dropped below its limit. */
  onWritable(): void;
  /** The connection is over for the application (err null = clean close). */
  onClosed(err: Error | null): void;
}

/** Sends one datagram made of the concatenation of `parts`. */
export type DatagramOut = (parts: Buffer[], bytes: number) => void;

export type EngineState = 'handshake' | 'established' | 'closing' | 'closed';

/** Per-connection counters (stats()). */
export interface ConnectionStats {
  state: EngineState;
  srttMs: number;
  rttVarMs: number;
  minRttMs: number;
  latestRttMs: number;
  cwnd: number;
  bytesInFlight: number;
  pacingRateBytesPerMs: number;
  congestion: Record<string, number | string>;
  packetsSent: number;
  packetsReceived: number;
  bytesSent: number;
  bytesReceived: number;
  streamBytesSent: number;
  streamBytesReceived: number;
  retransmissions: number;
  retransmittedBytes: number;
  spuriousRetransmissions: number;
  lostPackets: number;
  ptoCount: number;
  /** Times every packet over 3 PTOs was lost (RFC 9002 §7.6); the window collapsed. */
  persistentCongestionEvents: number;
  acksSent: number;
  sendBufferBytes: number;
  receiveBufferBytes: number;
  peerMaxData: number;
  drops: Record<string, number>;
}

const DEFAULT_MAX_PACKETS_PER_FLUSH = 64;
/** Times a CLOSE is repeated (closer) or acknowledged (peer). */
const MAX_CLOSE_RESENDS = 16;
const MAX_HANDSHAKE_BACKOFF_MS = 2000;

export class RudpEngine implements FrameSink {
  state: EngineState;
  readonly role: 'client' | 'server';
  readonly localCid: Buffer;
  remoteCid: Buffer | null = null;
  readonly drops = new DropCounter<EngineDropReason>();
  /** Peer transport parameters (after the handshake). */
  peerParams: TransportParams | null = null;
  /** Set when the server answered a client nonce; used by the socket to dedupe INITIALs. */
  clientNonce: Buffer;

  private readonly init: EngineInit;
  private keys: ConnectionKeys | null = null;
  private maxDatagramSize: number;
  private idleTimeoutMs: number;
  private peerMaxAckDelayMs = 0;
  private readonly rtt = new RttEstimator();
  private cc: CongestionController;
  private pacer: Pacer;
  private readonly sent = new SentPackets();
  private readonly acks: AckTracker;
  private readonly sendBuf = new SendBuffer();
  private readonly recvBuf: ReceiveBuffer;
  private readonly plan = newPacketPlan();
  private nextPn = 0;
  private peerMaxData = 0;

  // handshake
  private initialPacket: Buffer | null = null;
  private handshakePacket: Buffer | null = null;
  private handshakeDeadline = Infinity;
  private handshakeTimeoutMs = HANDSHAKE_INITIAL_TIMEOUT_MS;
  private initialSentAt = -1;
  private initialSends = 0;
  private resendHandshake = false;
  private validated: boolean;

  // anti-amplification (RFC 9000 §8.1)
  private unvalidatedBytesReceived = 0;
  private unvalidatedBytesSent = 0;

  // timers
  private lossTime = Infinity;
  private ptoCount = 0;
  private lastActivity = 0;
  private lastSend = 0;
  private closingUntil = Infinity;
  private lastPtoAt = -Infinity;

  // pending control frames
  private pingPending = false;
  private maxDataPending = false;
  private probesPending = 0;
  private closeRequested = false;
  private closePacket: Buffer[] | null = null;
  private closeError: Error | null = null;
  private closePn = -1;
  private closeAcked = false;
  private closeResends = 0;
  private closeResendAt = Infinity;
  private draining = false;
  private closedNotified = false;
  private writerBlocked = false;

  // delivery-rate sampling (draft-cheng-iccrg-delivery-rate-estimation)
  private delivered = 0;
  private deliveredTime = 0;
  private firstSentTime = 0;
  private appLimited = true;
  private readonly sample: RateSample = {
    deliveryRate: 0,
    isAppLimited: false,
    priorDelivered: 0,
    delivered: 0,
    rtt: 0,
  };

  // per-packet scratch state of input()
  private packetAckEliciting = false;
  private packetReadable = false;
  private packetClose: CloseFrame | null = null;
  private packetError: EngineDropReason | null = null;
  private packetNow = 0;
  private readonly ackScratch: AckFrame = { ackDelayMs: 0, ranges: [] };
  private readonly probeScratch: SentPacket[] = [];

  // counters
  private packetsSent = 0;
  private packetsReceived = 0;
  private bytesSent = 0;
  private bytesReceived = 0;
  private streamBytesReceived = 0;
  private retransmissions = 0;
  private retransmittedBytes = 0;
  private spuriousRetransmissions = 0;
  private lostPackets = 0;
  private ptoTotal = 0;
  private acksSent = 0;
  private persistentCongestionEvents = 0;
  /** When the first RTT sample was taken (RFC 9002 §7.6.2 counts only later losses). */
  private firstRttSampleTime = Infinity;

  private constructor(
    init: EngineInit,
    private readonly out: DatagramOut,
    private readonly events: EngineEvents,
    now: number
  ) {
    this.init = init;
    this.role = init.role;
    this.localCid = init.localCid;
    this.state = init.role === 'client' ? 'handshake' : 'established';
    this.validated = init.role === 'client';
    this.maxDatagramSize = init.params.maxDatagramSize;
    this.idleTimeoutMs = init.params.idleTimeoutMs;
    this.acks = new AckTracker(init.params.maxAckDelayMs);
    this.recvBuf = new ReceiveBuffer(init.params.initialMaxData);
    this.cc = createCongestionController(init.congestion, {
      maxDatagramSize: this.maxDatagramSize,
    });
    this.pacer = new Pacer(this.maxDatagramSize);
    this.clientNonce = Buffer.alloc(NONCE_LENGTH);
    this.lastActivity = now;
    this.lastSend = now;
  }

  private random(n: number): Buffer {
    return this.init.random ? this.init.random(n) : randomBytes(n);
  }

  /** A client engine; its INITIAL goes out on the first tick. */
  static client(init: EngineInit, out: DatagramOut, events: EngineEvents, now: number): RudpEngine {
    const e = new RudpEngine({ ...init, role: 'client' }, out, events, now);
    e.clientNonce = e.random(NONCE_LENGTH);
    e.initialPacket = buildInitial(
      init.clusterKeys,
      {
        version: PROTOCOL_VERSION,
        clientCid: init.localCid,
        clientNonce: e.clientNonce,
        params: init.params,
      },
      Math.min(INITIAL_PADDED_SIZE, init.params.maxDatagramSize)
    );
    e.handshakeDeadline = now;
    return e;
  }

  /**
   * A server engine for an authenticated INITIAL (the socket verified its MAC); the
   * HANDSHAKE reply goes out on the first tick, within the anti-amplification limit.
   */
  static server(
    init: EngineInit,
    initial: InitialInfo,
    initialBytes: number,
    out: DatagramOut,
    events: EngineEvents,
    now: number
  ): RudpEngine {
    const e = new RudpEngine({ ...init, role: 'server' }, out, events, now);
    const serverNonce = e.random(NONCE_LENGTH);
    e.clientNonce = initial.clientNonce;
    e.remoteCid = initial.clientCid;
    e.applyPeerParams(initial.params);
    e.keys = deriveConnectionKeys(
      init.clusterKeys.secret,
      init.aead,
      init.aeadBackend,
      false,
      initial.clientCid,
      init.localCid,
      initial.clientNonce,
      serverNonce
    );
    e.handshakePacket = buildHandshake(
      init.clusterKeys,
      {
        version: PROTOCOL_VERSION,
        clientCid: initial.clientCid,
        serverCid: init.localCid,
        serverNonce,
        params: init.params,
      },
      initial.clientNonce
    );
    e.unvalidatedBytesReceived = initialBytes;
    e.resendHandshake = true;
    return e;
  }

  private applyPeerParams(p: TransportParams): void {
    this.peerParams = p;
    const mds = Math.max(256, Math.min(this.init.params.maxDatagramSize, p.maxDatagramSize));
    if (mds !== this.maxDatagramSize) {
      this.maxDatagramSize = mds;
      this.cc = createCongestionController(this.init.congestion, { maxDatagramSize: mds });
      this.pacer = new Pacer(mds);
    }
    if (p.idleTimeoutMs > 0)
      this.idleTimeoutMs = Math.min(this.idleTimeoutMs || Infinity, p.idleTimeoutMs);
    this.peerMaxAckDelayMs = p.maxAckDelayMs;
    this.peerMaxData = p.initialMaxData;
  }

  // ---------------------------------------------------------------- application side

  /** Queues stream bytes (the caller bounds them with sendBufferFull()). */
  write(data: Buffer): void {
    if (this.state === 'closing' || this.state === 'closed' || this.closeRequested) {
      throw new ConnectionClosedError('write after close');
    }
    if (LATENCY_TRACE) traceMark(Stage.TRANSPORT_WRITE);
    this.sendBuf.write(data);
  }

  sendBufferFull(): boolean {
    const full = this.sendBuf.bufferedBytes() >= this.init.sendBufferBytes;
    if (full) this.writerBlocked = true;
    return full;
  }

  /** Ends our direction of the stream (FIN). */
  finish(): void {
    if (this.state !== 'closing' && this.state !== 'closed') this.sendBuf.finish();
  }

  /** Graceful close: FIN, wait until everything is acknowledged, then CLOSE. */
  close(): void {
    this.finish();
    this.closeRequested = true;
  }

  /** Abrupt close with an error code: CLOSE goes out at once, buffered data is dropped. */
  abort(code: number, reason: string, err: Error | null, now: number): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.sendClose(code, reason, now);
    this.finishClose(
      err ?? new ConnectionClosedError(`closed locally: ${reason} (code ${code})`),
      now
    );
    // nothing to linger for without keys (handshake) or without a CLOSE sent
    if (this.closePn < 0) this.state = 'closed';
  }

  /** Next contiguous received chunk, or null. */
  read(): Buffer | null {
    const c = this.recvBuf.read();
    if (c !== null && this.state === 'established' && this.recvBuf.windowUpdate() >= 0) {
      this.maxDataPending = true;
    }
    return c;
  }

  readableBytes(): number {
    return this.recvBuf.readableBytes();
  }

  /** The peer's FIN arrived and the reader has every byte before it. */
  readEnded(): boolean {
    return this.recvBuf.finRead();
  }

  // ---------------------------------------------------------------- network side

  /** Processes one datagram addressed to this connection. Never throws on bad input. */
  input(d: Buffer, now: number): void {
    if (this.state === 'closed') {
      this.drops.add('closed');
      return;
    }
    const type = d[0];
    if (!this.validated) this.unvalidatedBytesReceived += d.length;
    switch (type) {
      case PacketType.Handshake:
        this.onHandshake(d, now);
        return;
      case PacketType.Initial:
        // a retransmitted INITIAL: our HANDSHAKE was lost; answer again
        if (this.role === 'server' && !this.validated) this.resendHandshake = true;
        else this.drops.add('duplicate_handshake');
        return;
      case PacketType.Reset:
        if (this.remoteCid && verifyReset(this.init.clusterKeys, d, this.remoteCid)) {
          this.finishClose(new UnavailableError('connection reset by peer (stateless reset)'), now);
          this.state = 'closed';
        } else {
          this.drops.add('bad_auth');
        }
        return;
      case PacketType.Data:
        this.onData(d, now);
        return;
      default:
        this.drops.add('malformed');
    }
  }

  private onHandshake(d: Buffer, now: number): void {
    if (this.role !== 'client' || this.state !== 'handshake') {
      this.drops.add('duplicate_handshake');
      return;
    }
    const hs = parseHandshake(this.init.clusterKeys, d, this.clientNonce);
    if (hs === 'malformed' || hs === 'bad_auth') {
      this.drops.add(hs);
      return;
    }
    if (hs.version !== PROTOCOL_VERSION || !hs.clientCid.equals(this.localCid)) {
      this.drops.add('version');
      return;
    }
    this.remoteCid = hs.serverCid;
    this.applyPeerParams(hs.params);
    this.keys = deriveConnectionKeys(
      this.init.clusterKeys.secret,
      this.init.aead,
      this.init.aeadBackend,
      true,
      this.localCid,
      hs.serverCid,
      this.clientNonce,
      hs.serverNonce
    );
    // Karn: an RTT sample only if the INITIAL went out once.
    if (this.initialSends === 1) {
      this.rtt.update(now - this.initialSentAt, 0);
      this.firstRttSampleTime = now;
    }
    this.state = 'established';
    this.handshakeDeadline = Infinity;
    this.initialPacket = null;
    this.lastActivity = now;
    // An ack-eliciting packet right away validates us at the server.
    this.pingPending = true;
    this.events.onEstablished();
  }

  private onData(d: Buffer, now: number): void {
    const tracedAt = LATENCY_TRACE ? traceNow() : 0;
    if (!this.keys || d.length < DATA_HEADER_LENGTH + TAG_LENGTH) {
      this.drops.add(this.keys ? 'malformed' : 'not_ready');
      return;
    }
    const pn = d.readUInt32BE(DATA_HEADER_LENGTH - 4);
    // replay protection: a packet number is accepted once (checked again after decryption)
    if (this.acks.isDuplicate(pn) && !this.draining) {
      this.drops.add('replay');
      return;
    }
    const plain = this.keys.receive.open(d, pn);
    if (plain === null) {
      this.drops.add('bad_auth');
      return;
    }
    if (this.state === 'closing') {
      this.onDataWhileClosing(plain, pn, now);
      return;
    }
    this.packetAckEliciting = false;
    this.packetReadable = false;
    this.packetClose = null;
    this.packetError = null;
    this.packetNow = now;
    const ok = decodeFrames(plain, this, this.ackScratch);
    const packetError = this.packetError as EngineDropReason | null;
    if (!ok || packetError) {
      const reason: EngineDropReason = packetError ?? 'malformed';
      this.drops.add(reason);
      if (reason === 'flow_control') {
        this.abort(
          CloseCode.FLOW_CONTROL,
          'flow control violated',
          new ProtocolError('peer exceeded the flow-control window'),
          now
        );
      }
      return;
    }
    this.packetsReceived++;
    this.bytesReceived += d.length;
    this.acks.onPacket(pn, this.packetAckEliciting, now);
    this.lastActivity = now;
    if (!this.validated) {
      this.validated = true;
      this.handshakePacket = null;
      this.resendHandshake = false;
      this.events.onEstablished();
    }
    if (this.packetClose) {
      this.onPeerClose(this.packetClose, now);
      return;
    }
    if (this.packetReadable) {
      if (LATENCY_TRACE) {
        tracePending(Stage.TRANSPORT_DATAGRAM_IN, tracedAt);
        tracePending(Stage.TRANSPORT_OPENED);
      }
      this.events.onReadable();
    }
  }

  // FrameSink: called by decodeFrames for one authenticated packet
  onPing(): void {
    this.packetAckEliciting = true;
  }

  onAck(ack: AckFrame): void {
    this.processAck(ack, this.packetNow);
  }

  onStream(offset: number, data: Buffer, fin: boolean): void {
    this.packetAckEliciting = true;
    if (this.state !== 'established') return;
    const r = this.recvBuf.onFrame(offset, data, fin);
    if (r === 'flow_control') {
      this.packetError = 'flow_control';
      return;
    }
    if (r === 'ok') {
      this.streamBytesReceived += data.length;
      this.packetReadable = true;
    }
  }

  onMaxData(max: number): void {
    this.packetAckEliciting = true;
    if (max > this.peerMaxData) this.peerMaxData = max;
  }

  onClose(close: CloseFrame): void {
    this.packetClose = close;
  }

  private onPeerClose(c: CloseFrame, now: number): void {
    let err: Error | null = null;
    if (c.code !== CloseCode.NO_ERROR) {
      err = new ConnectionClosedError(`closed by peer: ${c.reason} (code ${c.code})`);
    } else {
      const ourDataReceived =
        c.receivedOffset >= this.sendBuf.writeOffset &&
        (this.sendBuf.finOffset < 0 || c.finReceived);
      if (!ourDataReceived || (!this.sendBuf.allAcked() && !ourDataReceived)) {
        err = new ConnectionClosedError(
          `closed by peer with ${this.sendBuf.writeOffset - c.receivedOffset} bytes undelivered`
        );
      }
    }
    if (this.recvBuf.readableBytes() > 0 || this.recvBuf.finReceived()) this.events.onReadable();
    // draining (RFC 9000 §10.2.2): send nothing but ACKs of the peer's CLOSE, so the
    // closer learns it arrived and stops repeating it.
    this.draining = true;
    this.finishClose(err, now);
    this.closeResends = 0;
    this.ackCloseNow(now);
  }

  private ackCloseNow(now: number): void {
    if (this.closeResends++ >= MAX_CLOSE_RESENDS) return;
    this.buildPacket(now, true, 0, 0);
  }

  /**
   * Closing: we sent CLOSE and repeat it until the peer acknowledges it. Draining: the
   * peer closed; we acknowledge each CLOSE it repeats.
   */
  private onDataWhileClosing(plain: Buffer, pn: number, now: number): void {
    this.lastActivity = now;
    this.acks.onPacket(pn, true, now);
    if (this.draining) {
      this.ackCloseNow(now);
      return;
    }
    this.packetClose = null;
    this.packetNow = now;
    if (!decodeFrames(plain, this, this.ackScratch)) return;
    if (this.closeAcked || this.packetClose) {
      this.state = 'closed';
      return;
    }
    // the peer is still talking: it did not get our CLOSE yet
    if (this.closePacket && this.closeResends++ < MAX_CLOSE_RESENDS) this.emit(this.closePacket);
  }

  private readonly onSpuriousLoss = (p: SentPacket): void => {
    this.spuriousRetransmissions++;
    // reordering, not loss: tolerate deeper reordering from now on (RFC 9002 §6.1.1)
    this.sent.packetThreshold = Math.min(MAX_PACKET_THRESHOLD, this.sent.packetThreshold + 1);
    this.ackFrames(p);
  };

  private processAck(ack: AckFrame, now: number): void {
    const sent = this.sent;
    const ranges = ack.ranges;
    let newlyAcked = 0;
    let largestNewly: SentPacket | null = null;
    let includesEliciting = false;
    const s = this.sample;
    s.deliveryRate = 0;
    s.priorDelivered = -1;
    let priorTime = 0;
    let sendElapsed = 0;
    let ackElapsed = 0;
    const floor = sent.lowestTracked();
    const top = sent.sentCount() - 1;
    if (this.closePn >= 0) {
      for (let k = 0; k < ranges.length; k += 2) {
        if (this.closePn <= ranges[k] && this.closePn >= ranges[k + 1]) this.closeAcked = true;
      }
      return;
    }
    // spurious retransmissions: lost packets acknowledged after all
    sent.recentlyLost.takeAcked(ranges, this.onSpuriousLoss);
    for (let k = 0; k < ranges.length; k += 2) {
      const hi = Math.min(ranges[k], top);
      const lo = Math.max(ranges[k + 1], floor);
      for (let pn = hi; pn >= lo; pn--) {
        const p = sent.get(pn);
        if (!p || p.state !== PacketState.Outstanding) continue;
        sent.markAcked(p);
        if (largestNewly === null) largestNewly = p;
        if (p.ackEliciting) includesEliciting = true;
        if (p.inFlight) {
          newlyAcked += p.size;
          this.delivered += p.size;
          this.deliveredTime = now;
          if (p.delivered > s.priorDelivered) {
            s.priorDelivered = p.delivered;
            priorTime = p.deliveredTime;
            sendElapsed = p.timeSent - p.firstSentTime;
            ackElapsed = now - p.deliveredTime;
            s.isAppLimited = p.appLimited;
            this.firstSentTime = p.timeSent;
          }
        }
        this.ackFrames(p);
      }
    }
    if (largestNewly === null) return;
    if (largestNewly.pn > sent.largestAcked) {
      sent.largestAcked = largestNewly.pn;
      // RFC 9002 §5.1: sample when the largest acknowledged is newly acked and ack-eliciting.
      if (includesEliciting) {
        const ackDelay = Math.min(ack.ackDelayMs, this.peerMaxAckDelayMs || ack.ackDelayMs);
        this.rtt.update(now - largestNewly.timeSent, ackDelay);
        if (this.firstRttSampleTime === Infinity) this.firstRttSampleTime = now;
      }
    }
    // RFC 9002 §6.2.1: the PTO backoff resets on an acknowledgement.
    this.ptoCount = 0;
    this.detectLost(now);
    if (newlyAcked > 0) {
      s.delivered = this.delivered;
      s.rtt = this.rtt.latestRtt;
      const interval = Math.max(sendElapsed, ackElapsed);
      // a sample over an interval shorter than min RTT is unreliable (ACK compression)
      if (s.priorDelivered >= 0 && interval > 0 && interval >= Math.min(this.rtt.minRtt, 0.05)) {
        s.deliveryRate = (this.delivered - s.priorDelivered) / interval;
      }
      void priorTime;
      this.cc.onAck({
        now,
        ackedBytes: newlyAcked,
        bytesInFlight: sent.bytesInFlight,
        largestAckedSentTime: largestNewly.timeSent,
        smoothedRtt: this.rtt.smoothedRtt,
        minRtt: this.rtt.minRtt,
        sample: s,
      });
    }
    if (this.writerBlocked && this.sendBuf.bufferedBytes() < this.init.sendBufferBytes) {
      this.writerBlocked = false;
      this.events.onWritable();
    }
  }

  private ackFrames(p: SentPacket): void {
    const f = p.frames;
    for (let i = 0; i < f.length; i += 4) this.sendBuf.onAcked(f[i], f[i + 1], f[i + 2] === 1);
    if (p.hasMaxData) p.hasMaxData = false;
  }

  /** Loss detection over the history, then persistent congestion (RFC 9002 §6.1, §7.6). */
  private detectLost(now: number): void {
    const sent = this.sent;
    // RFC 9002 §7.6.1: 3 x (srtt + max(4 rttvar, granularity) + max_ack_delay)
    const duration = 3 * this.rtt.pto(this.peerMaxAckDelayMs, 0);
    this.lossTime = sent.detectLost(
      now,
      this.rtt.latestRtt,
      this.rtt.smoothedRtt,
      p => this.onLost(p, now),
      duration,
      this.firstRttSampleTime
    );
    sent.compact();
    if (sent.persistentCongestion) {
      this.persistentCongestionEvents++;
      this.cc.onLoss({
        now,
        lostBytes: 0,
        largestLostSentTime: now,
        bytesInFlight: sent.bytesInFlight,
        persistentCongestion: true,
      });
    }
  }

  private onLost(p: SentPacket, now: number): void {
    if (p.ackEliciting) this.lostPackets++;
    const f = p.frames;
    for (let i = 0; i < f.length; i += 4) this.sendBuf.onLost(f[i], f[i + 1], f[i + 2] === 1);
    if (p.hasMaxData) this.maxDataPending = true;
    if (p.inFlight) {
      this.cc.onLoss({
        now,
        lostBytes: p.size,
        largestLostSentTime: p.timeSent,
        bytesInFlight: this.sent.bytesInFlight,
        persistentCongestion: false,
      });
    }
  }

  // ---------------------------------------------------------------- timers

  /** Absolute time of the next timer event (Infinity = none; <= now = call tick now). */
  nextDeadline(): number {
    if (this.state === 'closed') return Infinity;
    let t = this.idleTimeoutMs > 0 ? this.lastActivity + this.idleTimeoutMs : Infinity;
    if (this.state === 'closing') {
      return Math.min(t, this.closingUntil, this.draining ? Infinity : this.closeResendAt);
    }
    if (this.state === 'handshake') return Math.min(t, this.handshakeDeadline);
    t = Math.min(t, this.lossTime);
    const pto = this.ptoDeadline();
    if (pto < t) t = pto;
    if (this.acks.hasNewAcks()) {
      const a = this.acks.deadline();
      if (a < t) t = a;
    }
    if (this.init.keepAliveMs > 0) t = Math.min(t, this.lastSend + this.init.keepAliveMs);
    if (this.resendHandshake || this.pingPending || this.maxDataPending || this.probesPending > 0)
      return 0;
    if (
      this.sendBuf.hasPending(this.peerMaxData) &&
      this.sent.bytesInFlight < this.cc.cwnd() &&
      this.amplificationBudget() > DATA_HEADER_LENGTH + TAG_LENGTH + 64
    ) {
      const p = this.pacer.nextSendTime(this.maxDatagramSize);
      if (p < t) t = p;
    }
    return t;
  }

  private ptoDeadline(): number {
    if (this.sent.ackElicitingInFlight === 0) return Infinity;
    const sentAt = this.sent.lastAckElicitingTime();
    if (sentAt < 0) return Infinity;
    // from the last probe too: with the 1 s cap, a deadline from an old send would stay past
    const base = Math.max(sentAt, this.lastPtoAt);
    const pto = this.rtt.pto(this.peerMaxAckDelayMs, Math.min(this.ptoCount, MAX_PTO_BACKOFF));
    // capped: a datacenter peer silent for a second is better probed than waited for
    return base + Math.min(pto, MAX_PTO_MS);
  }

  /** Runs due timers and sends whatever may be sent now. */
  tick(now: number): void {
    if (this.state === 'closed') return;
    if (this.idleTimeoutMs > 0 && now >= this.lastActivity + this.idleTimeoutMs) {
      if (this.state === 'closing') {
        this.state = 'closed';
        return;
      }
      this.finishClose(
        new UnavailableError(`idle timeout (${this.idleTimeoutMs} ms without a packet)`),
        now
      );
      this.state = 'closed';
      return;
    }
    if (this.state === 'closing') {
      if (this.closeAcked || now >= this.closingUntil) {
        this.state = 'closed';
        return;
      }
      if (!this.draining && this.closePacket && now >= this.closeResendAt) {
        if (this.closeResends++ < MAX_CLOSE_RESENDS) this.emit(this.closePacket);
        this.closeResendAt = now + this.rtt.pto(this.peerMaxAckDelayMs, 0);
      }
      return;
    }
    if (this.state === 'handshake') {
      if (now >= this.handshakeDeadline && this.initialPacket) {
        this.emit([this.initialPacket]);
        if (this.initialSends === 0) this.initialSentAt = now;
        this.initialSends++;
        this.handshakeDeadline = now + this.handshakeTimeoutMs;
        this.handshakeTimeoutMs = Math.min(this.handshakeTimeoutMs * 2, MAX_HANDSHAKE_BACKOFF_MS);
      }
      return;
    }
    if (now >= this.lossTime) this.detectLost(now);
    if (now >= this.ptoDeadline()) {
      this.lastPtoAt = now;
      this.onPto();
    }
    if (this.init.keepAliveMs > 0 && now >= this.lastSend + this.init.keepAliveMs) {
      this.pingPending = true;
    }
    this.flush(now);
  }

  /** RFC 9002 §6.2.4: send up to two probes; resend the oldest unacknowledged data. */
  private onPto(): void {
    this.ptoCount++;
    this.ptoTotal++;
    this.probesPending = 2;
    this.sent.oldestWithData(2, this.probeScratch);
    if (this.probeScratch.length === 0) {
      this.pingPending = true;
      return;
    }
    for (const p of this.probeScratch) {
      const f = p.frames;
      for (let i = 0; i < f.length; i += 4) this.sendBuf.onLost(f[i], f[i + 1], f[i + 2] === 1);
    }
  }

  // ---------------------------------------------------------------- sending

  private emit(parts: Buffer[]): void {
    let bytes = 0;
    for (const p of parts) bytes += p.length;
    if (!this.validated) {
      if (
        this.unvalidatedBytesSent + bytes >
        AMPLIFICATION_FACTOR * this.unvalidatedBytesReceived
      ) {
        this.drops.add('amplification');
        return;
      }
      this.unvalidatedBytesSent += bytes;
    }
    this.out(parts, bytes);
  }

  private amplificationBudget(): number {
    if (this.validated) return Infinity;
    return AMPLIFICATION_FACTOR * this.unvalidatedBytesReceived - this.unvalidatedBytesSent;
  }

  private flush(now: number): void {
    if (this.resendHandshake && this.handshakePacket) {
      this.resendHandshake = false;
      this.emit([this.handshakePacket]);
    }
    if (this.state !== 'established' || !this.keys || !this.remoteCid) return;
    this.pacer.update(now, this.cc.pacingRate(this.rtt.smoothedRtt, this.rtt.hasSample));

    if (this.sendBuf.allAcked() && this.sendBuf.finOffset >= 0) {
      // graceful close once all our data is acknowledged, or both directions finished
      if (this.closeRequested || this.recvBuf.finReceived()) {
        this.sendClose(CloseCode.NO_ERROR, 'done', now);
        this.finishClose(null, now);
        return;
      }
    }

    const overhead = DATA_HEADER_LENGTH + TAG_LENGTH;
    const space = this.maxDatagramSize - overhead;
    const wantAck = this.acks.hasNewAcks();
    const reserved =
      (wantAck ? this.acks.frameLength() : 0) +
      (this.maxDataPending ? MAX_DATA_FRAME_LENGTH : 0) +
      (this.pingPending ? 1 : 0);
    const probe = this.probesPending > 0;
    const n = packetize(
      {
        cwnd: this.cc.cwnd(),
        bytesInFlight: this.sent.bytesInFlight,
        peerMaxData: this.peerMaxData,
        packetSpace: space,
        packetOverhead: overhead,
        firstPacketReserved: reserved,
        pacingBudget: this.pacer.budget(),
        amplificationBudget: this.amplificationBudget(),
        maxPackets: probe
          ? this.probesPending
          : (this.init.maxPacketsPerFlush ?? DEFAULT_MAX_PACKETS_PER_FLUSH),
        probe,
      },
      this.sendBuf,
      this.plan
    );
    let start = 0;
    for (let i = 0; i < n; i++) {
      const end = this.plan.ends[i];
      this.buildPacket(now, i === 0, start, end);
      start = end;
    }
    if (n === 0) {
      const control =
        this.pingPending || this.maxDataPending || (wantAck && this.acks.ackNeeded(now)) || probe;
      if (control) {
        if (probe && !this.pingPending) this.pingPending = true;
        this.buildPacket(now, true, 0, 0);
      }
    }
    this.probesPending = 0;
    // app-limited: nothing more to send although the window had room
    const limited =
      !this.sendBuf.hasPending(this.peerMaxData) && this.sent.bytesInFlight < this.cc.cwnd();
    this.appLimited = limited;
    this.cc.setAppLimited(limited);
  }

  private buildPacket(now: number, withControl: boolean, fStart: number, fEnd: number): void {
    if (this.nextPn > MAX_PACKET_NUMBER) {
      this.finishClose(new ConnectionClosedError('packet numbers exhausted'), now);
      this.state = 'closed';
      return;
    }
    // frames are written straight into the datagram, after its header, and sealed in place
    const buf = Buffer.allocUnsafe(this.maxDatagramSize);
    let pos = DATA_HEADER_LENGTH;
    let ackEliciting = false;
    let hasMaxData = false;
    if (withControl) {
      if (this.acks.hasNewAcks()) {
        pos = this.acks.writeFrame(buf, pos, now);
        this.acksSent++;
      }
      if (this.maxDataPending) {
        pos = writeMaxDataFrame(buf, pos, this.recvBuf.maxData);
        this.maxDataPending = false;
        hasMaxData = true;
        ackEliciting = true;
      }
      if (this.pingPending) {
        buf[pos++] = FrameType.Ping;
        this.pingPending = false;
        ackEliciting = true;
      }
    }
    let frames: number[] = EMPTY_FRAMES;
    if (fEnd > fStart) {
      frames = this.plan.frames.slice(fStart * 4, fEnd * 4);
      let retx = false;
      for (let i = 0; i < frames.length; i += 4) {
        const off = frames[i];
        const len = frames[i + 1];
        pos = writeStreamFrameHeader(buf, pos, off, len, frames[i + 2] === 1);
        this.sendBuf.copyOut(off, len, buf, pos);
        pos += len;
        if (frames[i + 3] === 1) {
          retx = true;
          this.retransmittedBytes += len;
        }
      }
      if (retx) this.retransmissions++;
      ackEliciting = true;
    }
    if (pos === DATA_HEADER_LENGTH) return;
    const size = pos + TAG_LENGTH;
    if (size > this.amplificationBudget()) {
      // RFC 9000 §8.1: not before the peer's address is validated
      this.drops.add('amplification');
      return;
    }
    const pn = this.nextPn++;
    writeDataHeader(buf, this.remoteCid as Buffer, pn);
    (this.keys as ConnectionKeys).send.seal(buf, DATA_HEADER_LENGTH, pos - DATA_HEADER_LENGTH, pn);
    if (LATENCY_TRACE && fEnd > fStart) traceMark(Stage.TRANSPORT_SEALED);
    const p = new SentPacket();
    p.pn = pn;
    p.timeSent = now;
    p.size = size;
    p.ackEliciting = ackEliciting;
    p.inFlight = ackEliciting;
    p.frames = frames;
    p.hasMaxData = hasMaxData;
    if (ackEliciting) {
      if (this.sent.bytesInFlight === 0) {
        this.firstSentTime = now;
        this.deliveredTime = now;
      }
      p.delivered = this.delivered;
      p.deliveredTime = this.deliveredTime;
      p.firstSentTime = this.firstSentTime;
      p.appLimited = this.appLimited;
    }
    this.sent.add(p);
    if (ackEliciting) {
      this.pacer.consume(size);
      this.cc.onPacketSent(now, size, this.sent.bytesInFlight);
    }
    this.packetsSent++;
    this.bytesSent += size;
    this.lastSend = now;
    this.emit([buf.subarray(0, size)]);
    if (LATENCY_TRACE && fEnd > fStart) traceMark(Stage.TRANSPORT_SENT);
  }

  private sendClose(code: number, reason: string, now: number): void {
    if (!this.keys || !this.remoteCid) return;
    const frame: CloseFrame = {
      code,
      receivedOffset: this.recvBuf.receivedOffset(),
      finReceived: this.recvBuf.finReceived(),
      reason: reason.slice(0, MAX_CLOSE_REASON_BYTES),
    };
    const buf = Buffer.allocUnsafe(this.maxDatagramSize);
    const H = DATA_HEADER_LENGTH;
    let pos = H;
    if (this.acks.hasNewAcks()) pos = this.acks.writeFrame(buf, pos, now);
    // the ACK makes way when the CLOSE (with its reason) would not fit beside it
    const closeLength = CLOSE_FRAME_OVERHEAD + Buffer.byteLength(frame.reason);
    if (pos + closeLength > this.maxDatagramSize - TAG_LENGTH) pos = H;
    pos = writeCloseFrame(buf, pos, frame);
    const pn = this.nextPn++;
    writeDataHeader(buf, this.remoteCid, pn);
    this.keys.send.seal(buf, H, pos - H, pn);
    // record it so packet numbers stay consecutive in the history
    const p = new SentPacket();
    p.pn = pn;
    p.timeSent = now;
    p.size = pos + TAG_LENGTH;
    p.state = PacketState.Acked;
    this.sent.add(p);
    this.closePn = pn;
    this.closeResendAt = now + this.rtt.pto(this.peerMaxAckDelayMs, 0);
    this.closePacket = [buf.subarray(0, p.size)];
    this.packetsSent++;
    this.bytesSent += p.size;
    this.emit(this.closePacket);
  }

  private finishClose(err: Error | null, now: number): void {
    if (this.state !== 'closed') {
      this.state = 'closing';
      // RFC 9000 §10.2: linger to answer late packets; the closer repeats its CLOSE
      // (up to MAX_CLOSE_RESENDS, one per PTO) until acknowledged.
      const pto = this.rtt.pto(this.peerMaxAckDelayMs, 0);
      this.closingUntil =
        now + (this.closePn >= 0 && !this.draining ? MAX_CLOSE_RESENDS + 2 : 3) * pto;
    }
    this.closeError = err;
    if (!this.closedNotified) {
      this.closedNotified = true;
      this.events.onClosed(err);
    }
  }

  /** The error the connection ended with (null while open or after a clean close). */
  error(): Error | null {
    return this.closeError;
  }

  isClosed(): boolean {
    return this.state === 'closed' || this.state === 'closing';
  }

  stats(): ConnectionStats {
    return {
      state: this.state,
      srttMs: this.rtt.smoothedRtt,
      rttVarMs: this.rtt.rttVar,
      minRttMs: this.rtt.minRtt === Infinity ? 0 : this.rtt.minRtt,
      latestRttMs: this.rtt.latestRtt,
      cwnd: this.cc.cwnd(),
      bytesInFlight: this.sent.bytesInFlight,
      pacingRateBytesPerMs: this.cc.pacingRate(this.rtt.smoothedRtt, this.rtt.hasSample),
      congestion: this.cc.state(),
      packetsSent: this.packetsSent,
      packetsReceived: this.packetsReceived,
      bytesSent: this.bytesSent,
      bytesReceived: this.bytesReceived,
      streamBytesSent: this.sendBuf.sentOffset,
      streamBytesReceived: this.streamBytesReceived,
      retransmissions: this.retransmissions,
      retransmittedBytes: this.retransmittedBytes,
      spuriousRetransmissions: this.spuriousRetransmissions,
      lostPackets: this.lostPackets,
      ptoCount: this.ptoTotal,
      persistentCongestionEvents: this.persistentCongestionEvents,
      acksSent: this.acksSent,
      sendBufferBytes: this.sendBuf.bufferedBytes(),
      receiveBufferBytes: this.recvBuf.bufferedBytes(),
      peerMaxData: this.peerMaxData,
      drops: this.drops.snapshot(),
    };
  }
}

const EMPTY_FRAMES: number[] = [];
