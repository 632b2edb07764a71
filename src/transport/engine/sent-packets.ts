/**
 * Sender-side packet history and loss detection (RFC 9002 §6). Packet numbers are
 * consecutive, so the history is a deque indexed by packet number. Packets declared lost
 * are remembered briefly so a late ACK can be counted as a spurious retransmission.
 */
import { PACKET_THRESHOLD, TIMER_GRANULARITY_MS, TIME_THRESHOLD } from '../constants';

export const enum PacketState {
  Outstanding = 0,
  Acked = 1,
  Lost = 2,
}

export class SentPacket {
  pn = 0;
  timeSent = 0;
  size = 0;
  ackEliciting = false;
  inFlight = false;
  /** Stream quads [offset, len, fin, retransmit]. */
  frames: number[] = EMPTY;
  hasMaxData = false;
  state = PacketState.Outstanding;
  // delivery-rate sampling state at send time
  delivered = 0;
  deliveredTime = 0;
  firstSentTime = 0;
  appLimited = false;
}

const EMPTY: number[] = [];
const LOST_MEMORY = 256;

/**
 * Packets recently declared lost, sorted by packet number, at most `capacity` (the oldest
 * are forgotten). An ACK that covers one of them reveals a spurious retransmission; the
 * check is a binary search per ACK range, not a scan of every remembered packet per ACK
 * (which was the sender's largest extra cost under 1% loss).
 */
export class LostPacketMemory {
  private readonly pkts: SentPacket[] = [];

  constructor(private readonly capacity = LOST_MEMORY) {}

  get size(): number {
    return this.pkts.length;
  }

  add(p: SentPacket): void {
    const a = this.pkts;
    if (a.length === 0 || a[a.length - 1].pn < p.pn) a.push(p);
    else a.splice(this.lowerBound(p.pn), 0, p);
    if (a.length > this.capacity) a.shift();
  }

  /**
   * Removes and passes to `onFound` every remembered packet inside an ACK range; `ranges`
   * is [largest, smallest, largest, smallest, ...] as in an ACK frame.
   */
  takeAcked(ranges: readonly number[], onFound: (p: SentPacket) => void): void {
    const a = this.pkts;
    if (a.length === 0) return;
    for (let k = 0; k < ranges.length; k += 2) {
      const hi = ranges[k];
      const i = this.lowerBound(ranges[k + 1]);
      let end = i;
      while (end < a.length && a[end].pn <= hi) end++;
      if (end === i) continue;
      const found = a.splice(i, end - i);
      for (const p of found) onFound(p);
    }
  }

  private lowerBound(pn: number): number {
    const a = this.pkts;
    let lo = 0;
    let hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (a[mid].pn < pn) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

export class SentPackets {
  private q: SentPacket[] = [];
  private head = 0;
  /** Packet number of q[head]. */
  private firstPn = 0;
  private nextPn = 0;
  bytesInFlight = 0;
  ackElicitingInFlight = 0;
  largestAcked = -1;
  /** Reordering threshold; starts at 3 and grows on spurious retransmissions. */
  packetThreshold = PACKET_THRESHOLD;
  /** Set by detectLost: its losses amount to persistent congestion (RFC 9002 §7.6). */
  persistentCongestion = false;
  /** Recently lost packets, for spotting spurious retransmissions. */
  readonly recentlyLost = new LostPacketMemory();

  add(p: SentPacket): void {
    if (p.pn !== this.nextPn) throw new Error('packet numbers must be consecutive');
    this.nextPn++;
    this.q.push(p);
    if (p.inFlight) this.bytesInFlight += p.size;
    if (p.ackEliciting) this.ackElicitingInFlight++;
  }

  get(pn: number): SentPacket | undefined {
    if (pn < this.firstPn) return undefined;
    return this.q[this.head + pn - this.firstPn];
  }

  /** Lowest outstanding packet number range start (for clamping ACK ranges). */
  lowestTracked(): number {
    return this.firstPn;
  }

  sentCount(): number {
    return this.nextPn;
  }

  /** Marks a packet acknowledged; returns false if it was not outstanding. */
  markAcked(p: SentPacket): void {
    p.state = PacketState.Acked;
    this.removeFromFlight(p);
  }

  private removeFromFlight(p: SentPacket): void {
    if (p.inFlight) this.bytesInFlight -= p.size;
    if (p.ackEliciting) this.ackElicitingInFlight--;
  }

  markLost(p: SentPacket): void {
    p.state = PacketState.Lost;
    this.removeFromFlight(p);
    if (p.ackEliciting) this.recentlyLost.add(p);
  }

  /** Drops resolved packets from the front of the deque. */
  compact(): void {
    const q = this.q;
    while (this.head < q.length && q[this.head].state !== PacketState.Outstanding) {
      this.head++;
      this.firstPn++;
    }
    if (this.head > 1024 && this.head * 2 > q.length) {
      this.q = q.slice(this.head);
      this.head = 0;
    }
  }

  /**
   * RFC 9002 §6.1 DetectAndRemoveLostPackets: a packet below the largest acknowledged is
   * lost when 3 later packets were acknowledged or it was sent more than 9/8 RTT ago.
   * Calls onLost for each; returns the time the next packet would become lost (or Infinity).
   *
   * Also RFC 9002 §7.6.2: sets `persistentCongestion` when the lost ack-eliciting packets
   * (with at least one newly lost) span `persistentDurationMs` or more with none acknowledged
   * in between, counting only packets sent after `firstRttSampleTime`.
   */
  detectLost(
    now: number,
    latestRtt: number,
    smoothedRtt: number,
    onLost: (p: SentPacket) => void,
    persistentDurationMs = Infinity,
    firstRttSampleTime = Infinity
  ): number {
    this.persistentCongestion = false;
    if (this.largestAcked < 0) return Infinity;
    const lossDelay = Math.max(
      TIME_THRESHOLD * Math.max(latestRtt, smoothedRtt),
      TIMER_GRANULARITY_MS
    );
    const q = this.q;
    let runStart = -1;
    let runNewlyLost = false;
    let next = Infinity;
    for (let i = this.head; i < q.length; i++) {
      const p = q[i];
      if (p.pn > this.largestAcked) break;
      if (p.state === PacketState.Acked) {
        runStart = -1;
        runNewlyLost = false;
        continue;
      }
      if (p.state === PacketState.Outstanding) {
        if (p.timeSent + lossDelay <= now || this.largestAcked >= p.pn + this.packetThreshold) {
          this.markLost(p);
          onLost(p);
          runNewlyLost = true;
        } else {
          // later packets were sent later and have higher numbers: not lost either
          next = p.timeSent + lossDelay;
          break;
        }
      }
      // a lost packet (now or earlier) extends the run of consecutive losses
      if (p.ackEliciting && p.timeSent > firstRttSampleTime) {
        if (runStart < 0) runStart = p.timeSent;
        else if (runNewlyLost && p.timeSent - runStart >= persistentDurationMs) {
          this.persistentCongestion = true;
        }
      }
    }
    return next;
  }

  /** Send time of the newest outstanding ack-eliciting packet (PTO base), or -1. */
  lastAckElicitingTime(): number {
    const q = this.q;
    for (let i = q.length - 1; i >= this.head; i--) {
      const p = q[i];
      if (p.state === PacketState.Outstanding && p.ackEliciting) return p.timeSent;
    }
    return -1;
  }

  /** Oldest outstanding packets carrying stream data (PTO probes resend their data). */
  oldestWithData(max: number, out: SentPacket[]): void {
    out.length = 0;
    const q = this.q;
    for (let i = this.head; i < q.length && out.length < max; i++) {
      const p = q[i];
      if (p.state === PacketState.Outstanding && p.frames.length > 0) out.push(p);
    }
  }
}
