/**
 * The per-connection engine (kcp-style): no I/O, no timers. The owner
 * feeds datagrams with `input(datagram, now)`, calls `tick(now)` at `nextDeadline()` (and
 * after inputs/writes), and receives datagrams through the injected `send`.
 *
 * This class coordinates the connection's parts and owns its state machine
 * (handshake → established → closing → closed):
 * - `handshake.ts`: INITIAL/HANDSHAKE, key derivation, address validation;
 * - `recovery.ts`: ACK processing, loss detection, PTO, RTT, delivery-rate sampling,
 *   congestion control and pacing;
 * - `assembler.ts`: building and sealing DATA and CLOSE packets;
 * - `closing.ts`: close and draining (abort, CLOSE and its repeats, the peer's CLOSE);
 * - `receive.ts`: authenticating a DATA packet and decoding its frames;
 * - the stream buffers (`send-buffer.ts`, `receive-buffer.ts`), `ack-tracker.ts`, `stats.ts`.
 *
 * Handshake (one round trip): the client sends INITIAL (MAC'd with the cluster secret);
 * the server answers HANDSHAKE (MAC'd, bound to the client's nonce); both derive AEAD keys
 * with HKDF. Every later packet is DATA: AEAD-protected frames under a fresh packet number.
 */
import { randomBytes } from 'node:crypto';
import { ConnectionClosedError, ProtocolError, UnavailableError } from '../../common';
import { DropCounter } from '../../common';
import { LATENCY_TRACE, Stage, traceMark, tracePending, traceNow } from '../../common';
import { verifyReset } from '../crypto/packet-protection';
import type { ConnectionKeys, InitialInfo } from '../crypto/packet-protection';
import { DATA_HEADER_LENGTH, NONCE_LENGTH, PacketType, TAG_LENGTH } from '../wire';
import type { AckFrame, TransportParams } from '../wire';
import { AckTracker } from './ack-tracker';
import { PacketAssembler } from './assembler';
import { Closing } from './closing';
import { Handshake } from './handshake';
import { ReceiveBuffer } from './receive-buffer';
import { PacketReceiver } from './receive';
import { Recovery } from './recovery';
import { SendBuffer } from './send-buffer';
import { collectStats } from './stats';
import { CloseCode } from './types';
import type {
  ConnectionStats,
  DatagramOut,
  EngineDropReason,
  EngineEvents,
  EngineInit,
  EngineState,
} from './types';

export class RudpEngine {
  state: EngineState;
  readonly role: 'client' | 'server';
  readonly localCid: Buffer;
  remoteCid: Buffer | null = null;
  readonly drops: DropCounter<EngineDropReason>;
  /** Peer transport parameters (after the handshake). */
  peerParams: TransportParams | null = null;
  /** Set when the server answered a client nonce; used by the socket to dedupe INITIALs. */
  clientNonce: Buffer;

  private readonly init: EngineInit;
  private keys: ConnectionKeys | null = null;
  private idleTimeoutMs: number;
  private peerMaxData = 0;
  private lastActivity = 0;
  private writerBlocked = false;

  private readonly handshake: Handshake;
  private readonly acks: AckTracker;
  private readonly sendBuf = new SendBuffer();
  private readonly recvBuf: ReceiveBuffer;
  private readonly recovery: Recovery;
  private readonly assembler: PacketAssembler;
  private readonly closing: Closing;
  private readonly receiver: PacketReceiver;

  // counters
  private packetsReceived = 0;
  private bytesReceived = 0;

  private constructor(
    init: EngineInit,
    private readonly out: DatagramOut,
    private readonly events: EngineEvents,
    now: number,
    handshake: Handshake
  ) {
    this.init = init;
    this.drops = new DropCounter('transport.connection', init.drops);
    this.role = init.role;
    this.localCid = init.localCid;
    this.state = init.role === 'client' ? 'handshake' : 'established';
    this.handshake = handshake;
    this.idleTimeoutMs = init.params.idleTimeoutMs;
    this.acks = new AckTracker(init.params.maxAckDelayMs);
    this.recvBuf = new ReceiveBuffer(init.params.initialMaxData);
    this.recovery = new Recovery(
      init.congestion,
      init.params.maxDatagramSize,
      this.sendBuf,
      () => (this.assembler.maxDataPending = true)
    );
    this.assembler = new PacketAssembler(
      this.acks,
      this.sendBuf,
      this.recvBuf,
      this.recovery,
      {
        emit: parts => this.emit(parts),
        amplificationBudget: () => this.handshake.budget(),
        amplificationDrop: () => this.drops.add('amplification'),
        packetNumbersExhausted: at => {
          this.closing.finish(new ConnectionClosedError('packet numbers exhausted'), at);
          this.state = 'closed';
        },
      },
      init.params.maxDatagramSize,
      init.maxPacketsPerFlush,
      now
    );
    this.receiver = new PacketReceiver(this.recvBuf, this.acks, {
      established: () => this.state === 'established',
      onAck: (ack, at) => this.onAck(ack, at),
      onMaxData: max => {
        if (max > this.peerMaxData) this.peerMaxData = max;
      },
    });
    this.closing = new Closing({
      host: {
        state: () => this.state,
        setState: state => (this.state = state),
        emit: parts => this.emit(parts),
        touch: at => (this.lastActivity = at),
        onClosed: err => this.events.onClosed(err),
        onReadable: () => this.events.onReadable(),
      },
      assembler: this.assembler,
      recovery: this.recovery,
      acks: this.acks,
      receiver: this.receiver,
      sendBuf: this.sendBuf,
      recvBuf: this.recvBuf,
    });
    this.clientNonce = Buffer.alloc(NONCE_LENGTH);
    this.lastActivity = now;
  }

  private static random(init: EngineInit, n: number): Buffer {
    return init.random ? init.random(n) : randomBytes(n);
  }

  /** A client engine; its INITIAL goes out on the first tick. */
  static client(init: EngineInit, out: DatagramOut, events: EngineEvents, now: number): RudpEngine {
    const clientInit: EngineInit = { ...init, role: 'client' };
    const clientNonce = RudpEngine.random(clientInit, NONCE_LENGTH);
    const handshake = Handshake.client(clientInit, clientNonce, now);
    const e = new RudpEngine(clientInit, out, events, now, handshake);
    e.clientNonce = clientNonce;
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
    const serverInit: EngineInit = { ...init, role: 'server' };
    const serverNonce = RudpEngine.random(serverInit, NONCE_LENGTH);
    const { handshake, keys } = Handshake.server(serverInit, initial, initialBytes, serverNonce);
    const e = new RudpEngine(serverInit, out, events, now, handshake);
    e.clientNonce = initial.clientNonce;
    e.remoteCid = initial.clientCid;
    e.applyPeerParams(initial.params);
    e.setKeys(keys, initial.clientCid);
    return e;
  }

  private setKeys(keys: ConnectionKeys, remoteCid: Buffer): void {
    this.keys = keys;
    this.assembler.keys = keys;
    this.assembler.remoteCid = remoteCid;
  }

  private applyPeerParams(p: TransportParams): void {
    this.peerParams = p;
    const mds = Math.max(256, Math.min(this.init.params.maxDatagramSize, p.maxDatagramSize));
    if (mds !== this.assembler.maxDatagramSize) {
      this.assembler.maxDatagramSize = mds;
      this.recovery.setMaxDatagramSize(mds);
    }
    if (p.idleTimeoutMs > 0)
      this.idleTimeoutMs = Math.min(this.idleTimeoutMs || Infinity, p.idleTimeoutMs);
    this.recovery.peerMaxAckDelayMs = p.maxAckDelayMs;
    this.peerMaxData = p.initialMaxData;
  }

  // ---------------------------------------------------------------- application side

  /** Queues stream bytes (the caller bounds them with sendBufferFull()). */
  write(data: Buffer): void {
    if (this.state === 'closing' || this.state === 'closed' || this.closing.requested) {
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
    this.closing.requested = true;
  }

  /** Abrupt close with an error code: CLOSE goes out at once, buffered data is dropped. */
  abort(code: number, reason: string, err: Error | null, now: number): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.closing.abort(code, reason, err, now);
  }

  /** Next contiguous received chunk, or null. */
  read(): Buffer | null {
    const c = this.recvBuf.read();
    if (c !== null && this.state === 'established' && this.recvBuf.windowUpdate() >= 0) {
      this.assembler.maxDataPending = true;
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
    this.handshake.onReceived(d.length);
    switch (type) {
      case PacketType.Handshake:
        this.onHandshake(d, now);
        return;
      case PacketType.Initial:
        // a retransmitted INITIAL: our HANDSHAKE was lost; answer again
        if (this.role === 'server' && !this.handshake.validated)
          this.handshake.resendHandshake = true;
        else this.drops.add('duplicate_handshake');
        return;
      case PacketType.Reset:
        if (
          this.remoteCid &&
          (verifyReset(this.init.clusterKeys, d, this.remoteCid) ||
            this.init.keyring?.verifyReset(d, this.remoteCid))
        ) {
          this.closing.finish(
            new UnavailableError('connection reset by peer (stateless reset)'),
            now
          );
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
    const hs = this.handshake.accept(this.init, d, this.clientNonce);
    if (typeof hs === 'string') {
      this.drops.add(hs);
      return;
    }
    this.remoteCid = hs.serverCid;
    this.applyPeerParams(hs.params);
    this.setKeys(hs.keys, hs.serverCid);
    const rttSample = this.handshake.complete(now);
    if (rttSample >= 0) this.recovery.onHandshakeRtt(rttSample, now);
    this.state = 'established';
    this.lastActivity = now;
    // An ack-eliciting packet right away validates us at the server.
    this.assembler.pingPending = true;
    this.events.onEstablished();
  }

  private onData(d: Buffer, now: number): void {
    const tracedAt = LATENCY_TRACE ? traceNow() : 0;
    const r = this.receiver;
    const plain = r.open(d, this.keys, this.closing.draining);
    if (plain === null) {
      this.drops.add(r.error as EngineDropReason);
      return;
    }
    const pn = r.pn;
    if (this.state === 'closing') {
      this.closing.onPacket(plain, pn, now);
      return;
    }
    const ok = r.decode(plain, now);
    const packetError = r.error;
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
    this.acks.onPacket(pn, r.ackEliciting, now);
    this.lastActivity = now;
    if (!this.handshake.validated) {
      this.handshake.onValidated();
      this.events.onEstablished();
    }
    if (r.close) {
      this.closing.onPeerClose(r.close, now);
      return;
    }
    if (r.readable) {
      if (LATENCY_TRACE) {
        tracePending(Stage.TRANSPORT_DATAGRAM_IN, tracedAt);
        tracePending(Stage.TRANSPORT_OPENED);
      }
      this.events.onReadable();
    }
  }

  /** An ACK frame: of our CLOSE while closing, else for loss recovery. */
  private onAck(ack: AckFrame, now: number): void {
    if (this.closing.pn >= 0) {
      this.closing.onAck(ack.ranges);
      return;
    }
    if (!this.recovery.onAck(ack, now)) return;
    if (this.writerBlocked && this.sendBuf.bufferedBytes() < this.init.sendBufferBytes) {
      this.writerBlocked = false;
      this.events.onWritable();
    }
  }

  // ---------------------------------------------------------------- timers

  /** Absolute time of the next timer event (Infinity = none; <= now = call tick now). */
  nextDeadline(): number {
    if (this.state === 'closed') return Infinity;
    let t = this.idleTimeoutMs > 0 ? this.lastActivity + this.idleTimeoutMs : Infinity;
    if (this.state === 'closing') return Math.min(t, this.closing.deadline());
    if (this.state === 'handshake') return Math.min(t, this.handshake.deadline);
    const recovery = this.recovery;
    t = Math.min(t, recovery.lossTime);
    const pto = recovery.ptoDeadline();
    if (pto < t) t = pto;
    if (this.acks.hasNewAcks()) {
      const a = this.acks.deadline();
      if (a < t) t = a;
    }
    if (this.init.keepAliveMs > 0) t = Math.min(t, this.assembler.lastSend + this.init.keepAliveMs);
    if (this.handshake.resendHandshake || this.assembler.controlPending()) return 0;
    if (
      this.sendBuf.hasPending(this.peerMaxData) &&
      recovery.windowOpen() &&
      this.handshake.budget() > DATA_HEADER_LENGTH + TAG_LENGTH + 64
    ) {
      const p = recovery.pacer.nextSendTime(this.assembler.maxDatagramSize);
      if (p < t) t = p;
    }
    return t;
  }

  /** Runs due timers and sends whatever may be sent now. */
  tick(now: number): void {
    if (this.state === 'closed') return;
    if (this.idleTimeoutMs > 0 && now >= this.lastActivity + this.idleTimeoutMs) {
      if (this.state === 'closing') {
        this.state = 'closed';
        return;
      }
      this.closing.finish(
        new UnavailableError(`idle timeout (${this.idleTimeoutMs} ms without a packet)`),
        now
      );
      this.state = 'closed';
      return;
    }
    if (this.state === 'closing') {
      this.closing.tick(now);
      return;
    }
    if (this.state === 'handshake') {
      const initial = this.handshake.initialDue(now);
      if (initial) this.emit([initial]);
      return;
    }
    const recovery = this.recovery;
    if (now >= recovery.lossTime) recovery.detectLost(now);
    if (now >= recovery.ptoDeadline()) {
      this.assembler.probesPending = 2;
      if (!recovery.onPto(now)) this.assembler.pingPending = true;
    }
    if (this.init.keepAliveMs > 0 && now >= this.assembler.lastSend + this.init.keepAliveMs) {
      this.assembler.pingPending = true;
    }
    this.flush(now);
  }

  // ---------------------------------------------------------------- sending

  /** Sends one datagram, within the anti-amplification limit (RFC 9000 §8.1). */
  private emit(parts: Buffer[]): void {
    let bytes = 0;
    for (const p of parts) bytes += p.length;
    if (!this.handshake.admit(bytes)) {
      this.drops.add('amplification');
      return;
    }
    this.out(parts, bytes);
  }

  private flush(now: number): void {
    const hs = this.handshake.takeHandshakeResend();
    if (hs) this.emit([hs]);
    if (this.state !== 'established' || !this.keys || !this.remoteCid) return;
    this.recovery.updatePacer(now);

    if (this.sendBuf.allAcked() && this.sendBuf.finOffset >= 0) {
      // graceful close once all our data is acknowledged, or both directions finished
      if (this.closing.requested || this.recvBuf.finReceived()) {
        this.closing.sendClose(CloseCode.NO_ERROR, 'done', now);
        this.closing.finish(null, now);
        return;
      }
    }
    this.assembler.sendData(now, this.peerMaxData);
  }

  /** The error the connection ended with (null while open or after a clean close). */
  error(): Error | null {
    return this.closing.error;
  }

  isClosed(): boolean {
    return this.state === 'closed' || this.state === 'closing';
  }

  stats(): ConnectionStats {
    return collectStats({
      state: this.state,
      recovery: this.recovery,
      assembler: this.assembler,
      sendBuf: this.sendBuf,
      recvBuf: this.recvBuf,
      receiver: this.receiver,
      packetsReceived: this.packetsReceived,
      bytesReceived: this.bytesReceived,
      peerMaxData: this.peerMaxData,
      drops: this.drops,
    });
  }
}
