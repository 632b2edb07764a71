/**
 * The packetizer: a pure function of a context (congestion window, bytes in flight, peer
 * receive window, datagram size, pacing budget) over the send buffer. It decides how many
 * packets may leave now and which stream ranges each carries; the engine's packet builder
 * then adds control frames, encrypts and sends.
 */
import type { SendBuffer } from './send-buffer';
import { STREAM_FRAME_OVERHEAD } from '../wire';

export interface PacketizerContext {
  /** Congestion window, bytes. */
  cwnd: number;
  bytesInFlight: number;
  /** Stream offset limit granted by the peer (flow control). */
  peerMaxData: number;
  /** Bytes of frames a packet can carry (datagram size minus header and AEAD tag). */
  packetSpace: number;
  /** Bytes a whole datagram adds to bytes in flight beyond its frames. */
  packetOverhead: number;
  /** Bytes already taken in the first packet by control frames (ACK, MAX_DATA, PING). */
  firstPacketReserved: number;
  /** Pacing credit in bytes (Infinity when unpaced). */
  pacingBudget: number;
  /** Anti-amplification credit in bytes (Infinity once the peer is validated). */
  amplificationBudget: number;
  /** Upper bound on packets per call (latency of one flush). */
  maxPackets: number;
  /** Probe packets (PTO) ignore the congestion window and pacing (RFC 9002 §7.5). */
  probe: boolean;
}

/**
 * Planned packets. `frames` holds quads [offset, len, fin, retransmit]; `ends[i]` is the
 * index in quads one past packet i's last frame.
 */
export interface PacketPlan {
  frames: number[];
  ends: number[];
}

export function newPacketPlan(): PacketPlan {
  return { frames: [], ends: [] };
}

const scratch = [0, 0, 0, 0];

/** Fills `plan` and returns the number of packets planned. */
export function packetize(ctx: PacketizerContext, buf: SendBuffer, plan: PacketPlan): number {
  plan.frames.length = 0;
  plan.ends.length = 0;
  let inFlight = ctx.bytesInFlight;
  let pacing = ctx.pacingBudget;
  let amplification = ctx.amplificationBudget;
  let packets = 0;
  while (packets < ctx.maxPackets) {
    // RFC 9002 §7: do not send when bytes in flight reach the window (probes excepted).
    if (!ctx.probe && (inFlight >= ctx.cwnd || pacing <= 0)) break;
    if (amplification <= ctx.packetOverhead) break;
    if (!buf.hasPending(ctx.peerMaxData)) break;
    let space = ctx.packetSpace - (packets === 0 ? ctx.firstPacketReserved : 0);
    space = Math.min(space, amplification - ctx.packetOverhead);
    let used = 0;
    let nframes = 0;
    while (space - used > STREAM_FRAME_OVERHEAD) {
      const room = space - used - STREAM_FRAME_OVERHEAD;
      if (!buf.next(room, ctx.peerMaxData, scratch)) break;
      plan.frames.push(scratch[0], scratch[1], scratch[2], scratch[3]);
      nframes++;
      used += STREAM_FRAME_OVERHEAD + scratch[1];
      if (scratch[2] === 1) break;
    }
    if (nframes === 0) break;
    plan.ends.push(plan.frames.length >> 2);
    packets++;
    const bytes = used + ctx.packetOverhead + (packets === 1 ? ctx.firstPacketReserved : 0);
    inFlight += bytes;
    pacing -= bytes;
    amplification -= bytes;
  }
  return packets;
}
