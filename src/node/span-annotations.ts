/**
 * Transport detail on the producer span of a message leaving for a peer (tracing only):
 * the peer's address, state, srtt and window at the hand-off, events when it has to wait
 * for resolution, a connection or the congestion window, and, at the end of the span,
 * the retransmissions its connection made meanwhile.
 */
import type { Message } from '../common';
import { formatHostPort } from '../common';
import type { Cluster, ClusterTarget } from '../dispatch';
import type { PeerDirectory } from '../peers';
import type { MessagingTelemetry } from '../telemetry';
import { addSpanEvent, onProducerSpanEnd, producerSpanOf, setSpanAttributes } from '../telemetry';
import { peerIdAt } from './peer-admin';

/** What the annotations read: the node's cluster, directory and transport figures. */
export interface AnnotationSources {
  readonly cluster: Cluster | undefined;
  readonly directory: PeerDirectory;
  readonly telemetry: MessagingTelemetry;
}

export function annotateRemote(
  from: AnnotationSources,
  msg: Message,
  where: ClusterTarget,
  eventsOnly = false
): void {
  // an unsampled message has no producer span: nothing to look up or build
  if (!from.cluster || producerSpanOf(msg) === undefined) return;
  const peerId = 'peerId' in where ? where.peerId : peerIdAt(from.directory, where.address);
  const st = from.cluster.peerStatus(peerId);
  const entry = from.directory.get(peerId);
  const address =
    'address' in where ? where.address : entry?.addresses[0] && formatHostPort(entry.addresses[0]);
  const peer = from.telemetry.transport.peerSnapshot(peerId);
  const peerAttr = { 'meshwire.peer.id': peerId };
  if (!eventsOnly) {
    setSpanAttributes(msg, {
      'meshwire.peer.state': st.state,
      ...(address ? { 'network.peer.address': address } : {}),
      ...(peer?.srttMs !== undefined ? { 'meshwire.peer.srtt_ms': peer.srttMs } : {}),
      ...(peer?.cwnd !== undefined ? { 'meshwire.peer.cwnd': peer.cwnd } : {}),
    });
  }
  if (st.state === 'unresolved') {
    addSpanEvent(msg, 'waited_for_peer_resolution', peerAttr);
  } else if (st.state !== 'connected') {
    addSpanEvent(msg, 'waited_for_connection', { ...peerAttr, 'meshwire.peer.state': st.state });
  }
  if (peer?.cwnd !== undefined && (peer.bytesInFlight ?? 0) >= peer.cwnd) {
    addSpanEvent(msg, 'waited_for_send_window', {
      ...peerAttr,
      'meshwire.peer.bytes_in_flight': peer.bytesInFlight ?? 0,
      'meshwire.peer.cwnd': peer.cwnd,
    });
  }
  if (!eventsOnly) {
    const before = peer?.retransmissions ?? 0;
    onProducerSpanEnd(msg, span => {
      const after = from.telemetry.transport.peerSnapshot(peerId)?.retransmissions ?? before;
      if (after > before) {
        span.addEvent('retransmitted', {
          ...peerAttr,
          'meshwire.retransmissions': after - before,
        });
      }
    });
  }
}
