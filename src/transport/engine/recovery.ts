/**
 * Loss recovery and congestion control of one connection: the sent-packet history, RTT
 * estimation, loss detection and probe timeouts (RFC 9002), delivery-rate sampling
 * (draft-cheng-iccrg-delivery-rate-estimation) for the congestion controller, and pacing.
 * Pure logic: time comes in as `now`.
 */
import { MAX_PACKET_THRESHOLD, MAX_PTO_BACKOFF, MAX_PTO_MS } from '../constants';
import { createCongestionController } from '../congestion';
import type { CongestionAlgorithm, CongestionController, RateSample } from '../congestion';
import type { AckFrame } from '../wire';
import { Pacer } from './pacer';
import { RttEstimator } from './rtt-estimator';
import type { SendBuffer } from './send-buffer';
import type { SentPacket } from './sent-packets';
import { PacketState, SentPackets } from './sent-packets';

export class Recovery {
  readonly rtt = new RttEstimator();
  readonly sent = new SentPackets();
  cc: CongestionController;
  pacer: Pacer;
  /** The peer's max_ack_delay (transport parameter), 0 until the handshake. */
  peerMaxAckDelayMs = 0;
  /** When the next packet may be declared lost by time (Infinity = none). */
  lossTime = Infinity;
  private ptoCount = 0;
  private lastPtoAt = -Infinity;
  /** When the first RTT sample was taken (RFC 9002 §7.6.2 counts only later losses). */
  private firstRttSampleTime = Infinity;

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
  private readonly probeScratch: SentPacket[] = [];

  // counters (stats())
  spuriousRetransmissions = 0;
  lostPackets = 0;
  ptoTotal = 0;
  /** Times every packet over 3 PTOs was lost (RFC 9002 §7.6); the window collapsed. */
  persistentCongestionEvents = 0;

  /**
   * `sendBuf` learns which stream ranges were acknowledged or lost; `onMaxDataLost` is
   * told when a packet carrying MAX_DATA was lost (the frame is to be sent again).
   */
  constructor(
    private readonly algorithm: CongestionAlgorithm,
    maxDatagramSize: number,
    private readonly sendBuf: SendBuffer,
    private readonly onMaxDataLost: () => void
  ) {
    this.cc = createCongestionController(algorithm, { maxDatagramSize });
    this.pacer = new Pacer(maxDatagramSize);
  }

  /** The datagram size changed (peer parameters): congestion state starts over. */
  setMaxDatagramSize(mds: number): void {
    this.cc = createCongestionController(this.algorithm, { maxDatagramSize: mds });
    this.pacer = new Pacer(mds);
  }

  /** The handshake gave an RTT sample. */
  onHandshakeRtt(rttMs: number, now: number): void {
    this.rtt.update(rttMs, 0);
    this.firstRttSampleTime = now;
  }

  /** One PTO without backoff (close and drain timing). */
  basePto(): number {
    return this.rtt.pto(this.peerMaxAckDelayMs, 0);
  }

  /** Room in the congestion window. */
  windowOpen(): boolean {
    return this.sent.bytesInFlight < this.cc.cwnd();
  }

  updatePacer(now: number): void {
    this.pacer.update(now, this.cc.pacingRate(this.rtt.smoothedRtt, this.rtt.hasSample));
  }

  /** Nothing more to send although the window had room (or the opposite). */
  setAppLimited(limited: boolean): void {
    this.appLimited = limited;
    this.cc.setAppLimited(limited);
  }

  /** Records a sent DATA packet: rate-sampling state, history, pacing and the window. */
  onPacketSent(p: SentPacket, now: number): void {
    if (p.ackEliciting) {
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
    if (p.ackEliciting) {
      this.pacer.consume(p.size);
      this.cc.onPacketSent(now, p.size, this.sent.bytesInFlight);
    }
  }

  private ackFrames(p: SentPacket): void {
    const f = p.frames;
    for (let i = 0; i < f.length; i += 4) this.sendBuf.onAcked(f[i], f[i + 1], f[i + 2] === 1);
    if (p.hasMaxData) p.hasMaxData = false;
  }

  private readonly onSpuriousLoss = (p: SentPacket): void => {
    this.spuriousRetransmissions++;
    // reordering, not loss: tolerate deeper reordering from now on (RFC 9002 §6.1.1)
    this.sent.packetThreshold = Math.min(MAX_PACKET_THRESHOLD, this.sent.packetThreshold + 1);
    this.ackFrames(p);
  };

  /**
   * Processes an ACK frame: acknowledged packets, the RTT sample, loss detection and the
   * delivery-rate sample for the congestion controller. Returns false when it acknowledged
   * nothing new.
   */
  onAck(ack: AckFrame, now: number): boolean {
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
    if (largestNewly === null) return false;
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
    return true;
  }

  /** Loss detection over the history, then persistent congestion (RFC 9002 §6.1, §7.6). */
  detectLost(now: number): void {
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
    if (p.hasMaxData) this.onMaxDataLost();
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

  /** When the probe timeout fires (Infinity = nothing ack-eliciting in flight). */
  ptoDeadline(): number {
    if (this.sent.ackElicitingInFlight === 0) return Infinity;
    const sentAt = this.sent.lastAckElicitingTime();
    if (sentAt < 0) return Infinity;
    // from the last probe too: with the 1 s cap, a deadline from an old send would stay past
    const base = Math.max(sentAt, this.lastPtoAt);
    const pto = this.rtt.pto(this.peerMaxAckDelayMs, Math.min(this.ptoCount, MAX_PTO_BACKOFF));
    // capped: a datacenter peer silent for a second is better probed than waited for
    return base + Math.min(pto, MAX_PTO_MS);
  }

  /**
   * RFC 9002 §6.2.4: the probe timeout fired; the oldest unacknowledged data is to be sent
   * again in up to two probes. Returns false when there is no data to probe with (a PING
   * then).
   */
  onPto(now: number): boolean {
    this.lastPtoAt = now;
    this.ptoCount++;
    this.ptoTotal++;
    this.sent.oldestWithData(2, this.probeScratch);
    if (this.probeScratch.length === 0) return false;
    for (const p of this.probeScratch) {
      const f = p.frames;
      for (let i = 0; i < f.length; i += 4) this.sendBuf.onLost(f[i], f[i + 1], f[i + 2] === 1);
    }
    return true;
  }
}
