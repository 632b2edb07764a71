/** The counters of one connection, gathered from the engine's parts for stats(). */
import type { DropCounter } from '../../common';
import type { PacketAssembler } from './assembler';
import type { ReceiveBuffer } from './receive-buffer';
import type { PacketReceiver } from './receive';
import type { Recovery } from './recovery';
import type { SendBuffer } from './send-buffer';
import type { ConnectionStats, EngineState } from './types';

export interface StatsSources {
  state: EngineState;
  recovery: Recovery;
  assembler: PacketAssembler;
  sendBuf: SendBuffer;
  recvBuf: ReceiveBuffer;
  receiver: PacketReceiver;
  packetsReceived: number;
  bytesReceived: number;
  peerMaxData: number;
  drops: DropCounter<string>;
}

export function collectStats(s: StatsSources): ConnectionStats {
  const { rtt, cc, sent } = s.recovery;
  const a = s.assembler;
  return {
    state: s.state,
    srttMs: rtt.smoothedRtt,
    rttVarMs: rtt.rttVar,
    minRttMs: rtt.minRtt === Infinity ? 0 : rtt.minRtt,
    latestRttMs: rtt.latestRtt,
    cwnd: cc.cwnd(),
    bytesInFlight: sent.bytesInFlight,
    pacingRateBytesPerMs: cc.pacingRate(rtt.smoothedRtt, rtt.hasSample),
    congestion: cc.state(),
    packetsSent: a.packetsSent,
    packetsReceived: s.packetsReceived,
    bytesSent: a.bytesSent,
    bytesReceived: s.bytesReceived,
    streamBytesSent: s.sendBuf.sentOffset,
    streamBytesReceived: s.receiver.streamBytesReceived,
    retransmissions: a.retransmissions,
    retransmittedBytes: a.retransmittedBytes,
    spuriousRetransmissions: s.recovery.spuriousRetransmissions,
    lostPackets: s.recovery.lostPackets,
    ptoCount: s.recovery.ptoTotal,
    persistentCongestionEvents: s.recovery.persistentCongestionEvents,
    acksSent: a.acksSent,
    sendBufferBytes: s.sendBuf.bufferedBytes(),
    receiveBufferBytes: s.recvBuf.bufferedBytes(),
    peerMaxData: s.peerMaxData,
    drops: s.drops.snapshot(),
  };
}
