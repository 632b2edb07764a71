/**
 * Packet assembly for one connection: what goes into the next DATA packets (ACK, MAX_DATA,
 * PING, stream frames chosen by the packetizer within the congestion window, the peer's
 * flow-control window, the pacer and the amplification limit), sealing them in place, and
 * the CLOSE packet. Pure logic: time comes in as `now`; datagrams leave through the host.
 */
import { LATENCY_TRACE, Stage, traceMark } from '../../common';
import type { ConnectionKeys } from '../crypto/packet-protection';
import {
  CLOSE_FRAME_OVERHEAD,
  DATA_HEADER_LENGTH,
  FrameType,
  MAX_CLOSE_REASON_BYTES,
  MAX_DATA_FRAME_LENGTH,
  MAX_PACKET_NUMBER,
  TAG_LENGTH,
  writeCloseFrame,
  writeDataHeader,
  writeMaxDataFrame,
  writeStreamFrameHeader,
} from '../wire';
import type { CloseFrame } from '../wire';
import type { AckTracker } from './ack-tracker';
import { newPacketPlan, packetize } from './packetizer';
import type { ReceiveBuffer } from './receive-buffer';
import type { Recovery } from './recovery';
import type { SendBuffer } from './send-buffer';
import { PacketState, SentPacket } from './sent-packets';

const DEFAULT_MAX_PACKETS_PER_FLUSH = 64;
const EMPTY_FRAMES: number[] = [];

/** What the assembler needs from its engine. */
export interface AssemblerHost {
  /** Sends one datagram (subject to the amplification limit). */
  emit(parts: Buffer[]): void;
  /** Bytes that may be sent before the peer's address is validated. */
  amplificationBudget(): number;
  /** A packet was not sent: it would exceed the amplification limit. */
  amplificationDrop(): void;
  /** No packet number is left: the connection must end. */
  packetNumbersExhausted(now: number): void;
}

export class PacketAssembler {
  // pending control frames
  pingPending = false;
  maxDataPending = false;
  /** Probe packets owed by a PTO (RFC 9002 §6.2.4); they bypass the window. */
  probesPending = 0;
  /** Set with the handshake. */
  keys: ConnectionKeys | null = null;
  remoteCid: Buffer | null = null;
  maxDatagramSize: number;
  /** When the last packet went out (keepalive). */
  lastSend: number;

  private readonly plan = newPacketPlan();
  private nextPn = 0;

  // counters (stats())
  packetsSent = 0;
  bytesSent = 0;
  retransmissions = 0;
  retransmittedBytes = 0;
  acksSent = 0;

  constructor(
    private readonly acks: AckTracker,
    private readonly sendBuf: SendBuffer,
    private readonly recvBuf: ReceiveBuffer,
    private readonly recovery: Recovery,
    private readonly host: AssemblerHost,
    maxDatagramSize: number,
    private readonly maxPacketsPerFlush: number | undefined,
    now: number
  ) {
    this.maxDatagramSize = maxDatagramSize;
    this.lastSend = now;
  }

  /** Control frames are waiting (they go out at once, without waiting for a timer). */
  controlPending(): boolean {
    return this.pingPending || this.maxDataPending || this.probesPending > 0;
  }

  /**
   * Sends what may be sent now: stream data within the windows (up to the per-flush
   * packet limit, or the probes a PTO owes), with the pending control frames in the first
   * packet; or a control-only packet when no data may go.
   */
  sendData(now: number, peerMaxData: number): void {
    const recovery = this.recovery;
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
        cwnd: recovery.cc.cwnd(),
        bytesInFlight: recovery.sent.bytesInFlight,
        peerMaxData,
        packetSpace: space,
        packetOverhead: overhead,
        firstPacketReserved: reserved,
        pacingBudget: recovery.pacer.budget(),
        amplificationBudget: this.host.amplificationBudget(),
        maxPackets: probe
          ? this.probesPending
          : (this.maxPacketsPerFlush ?? DEFAULT_MAX_PACKETS_PER_FLUSH),
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
    recovery.setAppLimited(!this.sendBuf.hasPending(peerMaxData) && recovery.windowOpen());
  }

  /**
   * Builds, seals and sends one DATA packet: the control frames if `withControl`, then the
   * planned stream frames [fStart, fEnd).
   */
  buildPacket(now: number, withControl: boolean, fStart: number, fEnd: number): void {
    if (this.nextPn > MAX_PACKET_NUMBER) {
      this.host.packetNumbersExhausted(now);
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
    if (size > this.host.amplificationBudget()) {
      // RFC 9000 §8.1: not before the peer's address is validated
      this.host.amplificationDrop();
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
    this.recovery.onPacketSent(p, now);
    this.packetsSent++;
    this.bytesSent += size;
    this.lastSend = now;
    this.host.emit([buf.subarray(0, size)]);
    if (LATENCY_TRACE && fEnd > fStart) traceMark(Stage.TRANSPORT_SENT);
  }

  /**
   * Builds and seals a CLOSE packet (with an ACK when both fit), recorded in the history
   * so packet numbers stay consecutive; null without keys (during the handshake). The
   * caller sends it.
   */
  buildClose(code: number, reason: string, now: number): { pn: number; packet: Buffer[] } | null {
    if (!this.keys || !this.remoteCid) return null;
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
    const p = new SentPacket();
    p.pn = pn;
    p.timeSent = now;
    p.size = pos + TAG_LENGTH;
    p.state = PacketState.Acked;
    this.recovery.sent.add(p);
    this.packetsSent++;
    this.bytesSent += p.size;
    return { pn, packet: [buf.subarray(0, p.size)] };
  }
}
