/**
 * Per-peer transport figures and queue depths, read at scrape time. The cluster layer
 * registers each peer connection (anything with a `stats()` method, e.g. RudpConnection)
 * and each bounded queue; nothing is computed until Prometheus scrapes /metrics.
 */
import type { Attributes, Meter } from '@opentelemetry/api';

/**
 * The figures read from a connection's stats(). Every field is optional so that any
 * transport (or a test double) can be registered; missing fields are not exported.
 */
export interface TransportStatsLike {
  srttMs?: number;
  cwnd?: number;
  bytesInFlight?: number;
  retransmissions?: number;
  lostPackets?: number;
  packetsSent?: number;
  packetsReceived?: number;
  bytesSent?: number;
  bytesReceived?: number;
  /** Packets dropped, by reason (e.g. bad_auth, duplicate, closed). */
  drops?: Record<string, number>;
}

export interface TransportStatsSource {
  stats(): TransportStatsLike;
}

/** A socket shared by every connection (RudpSocket): its drops by reason. */
export interface SocketStatsSource {
  stats(): {
    drops?: Record<string, number>;
    aead?: string;
    aeadBackend?: string;
    udpDriver?: string;
    /** Cluster secrets accepted now. */
    clusterSecrets?: number;
    /** Connections accepted, by the index of the secret that matched (0 = the sending one). */
    handshakesAcceptedBySecret?: number[];
    /** Cluster secret reloads: `ok`, and refusals by reason. */
    clusterSecretReloads?: Record<string, number>;
  };
}

/** A peer id, or a function giving it at scrape time (e.g. a directory lookup by address). */
export type PeerName = string | (() => string);

const nameOf = (p: PeerName): string => {
  if (typeof p === 'string') return p;
  try {
    return p();
  } catch {
    return 'unknown';
  }
};

/** Counter fields summed per peer; kept for closed connections so totals never go down. */
const COUNTER_FIELDS = [
  'retransmissions',
  'lostPackets',
  'packetsSent',
  'packetsReceived',
  'bytesSent',
  'bytesReceived',
] as const;
type CounterField = (typeof COUNTER_FIELDS)[number];

interface PeerTotals {
  counters: Record<CounterField, number>;
  drops: Record<string, number>;
}

function emptyTotals(): PeerTotals {
  return {
    counters: {
      retransmissions: 0,
      lostPackets: 0,
      packetsSent: 0,
      packetsReceived: 0,
      bytesSent: 0,
      bytesReceived: 0,
    },
    drops: {},
  };
}

function addInto(t: PeerTotals, s: TransportStatsLike): void {
  for (const f of COUNTER_FIELDS) t.counters[f] += s[f] ?? 0;
  if (s.drops) for (const [k, v] of Object.entries(s.drops)) t.drops[k] = (t.drops[k] ?? 0) + v;
}

/** Queues whose depth is exported (docs/design.md, "Bounded queues"). */
export type QueueKind = 'unresolved' | 'peer_sender' | 'subscriber' | (string & {});

interface QueueEntry {
  kind: QueueKind;
  attributes: Attributes;
  depth: () => number;
}

/**
 * The registry a node owns: connections by peer and queue depth sources. register*()
 * return an unregister function; call it when the connection or queue goes away.
 */
export class TransportMetrics {
  private readonly live = new Map<TransportStatsSource, PeerName>();
  private readonly sockets = new Set<SocketStatsSource>();
  private readonly retired = new Map<string, PeerTotals>();
  private readonly queues = new Set<QueueEntry>();
  private knownDatagramDropReasons: readonly string[] = [];
  private readonly queueSources = new Set<
    () => Array<{ kind: QueueKind; depth: number; attributes?: Attributes }>
  >();

  /**
   * Registers one connection to `peerId`. Its srtt/cwnd/bytes in flight are exported
   * while registered; its counters are added to the peer's totals when unregistered.
   */
  registerConnection(peer: PeerName, source: TransportStatsSource): () => void {
    this.live.set(source, peer);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (!this.live.delete(source)) return;
      const peerId = nameOf(peer);
      let totals = this.retired.get(peerId);
      if (!totals) this.retired.set(peerId, (totals = emptyTotals()));
      try {
        addInto(totals, source.stats());
      } catch {
        // A connection that cannot report any more loses its last figures, nothing else.
      }
    };
  }

  /**
   * Registers a connection that unregisters itself on its 'close' event (a
   * RudpConnection, or any Duplex with stats()).
   */
  watchConnection(
    peer: PeerName,
    conn: TransportStatsSource & { once(event: 'close', fn: () => void): unknown }
  ): void {
    conn.once('close', this.registerConnection(peer, conn));
  }

  /** Registers a socket whose datagram drops (by reason) are exported. */
  registerSocket(source: SocketStatsSource): () => void {
    this.sockets.add(source);
    return () => this.sockets.delete(source);
  }

  /**
   * Datagram drop reasons exported at zero before the first drop of each, so an alert on
   * `rate(...)` has a series from the start (the node layer passes the transport's list).
   */
  declareDatagramDropReasons(reasons: readonly string[]): void {
    this.knownDatagramDropReasons = [...reasons];
  }

  /** Registers a queue whose depth is read at scrape time (e.g. one per peer sender). */
  registerQueue(kind: QueueKind, depth: () => number, attributes: Attributes = {}): () => void {
    const entry: QueueEntry = { kind, depth, attributes };
    this.queues.add(entry);
    return () => this.queues.delete(entry);
  }

  /** Number of registered connections (tests, ListPeers). */
  get connectionCount(): number {
    return this.live.size;
  }

  /** Snapshot of every live connection's stats with its peer id; failing sources are skipped. */
  liveStats(): Array<{ peerId: string; stats: TransportStatsLike }> {
    const out: Array<{ peerId: string; stats: TransportStatsLike }> = [];
    for (const [source, peer] of this.live) {
      try {
        out.push({ peerId: nameOf(peer), stats: source.stats() });
      } catch {
        // skipped: telemetry never throws into the scrape
      }
    }
    return out;
  }

  /** Per-peer counter totals (live connections plus closed ones). */
  totals(live = this.liveStats()): Map<string, PeerTotals> {
    const out = new Map<string, PeerTotals>();
    for (const [peer, t] of this.retired) {
      const copy = emptyTotals();
      for (const f of COUNTER_FIELDS) copy.counters[f] = t.counters[f];
      copy.drops = { ...t.drops };
      out.set(peer, copy);
    }
    for (const { peerId, stats } of live) {
      let t = out.get(peerId);
      if (!t) out.set(peerId, (t = emptyTotals()));
      addInto(t, stats);
    }
    return out;
  }

  /**
   * The live figures of the connections to one peer (summed counters, the smallest srtt
   * and the largest window): what a send span records about its peer. Undefined when
   * no connection to it is registered.
   */
  peerSnapshot(peerId: string): TransportStatsLike | undefined {
    let out: TransportStatsLike | undefined;
    for (const { peerId: id, stats } of this.liveStats()) {
      if (id !== peerId) continue;
      out ??= { retransmissions: 0, lostPackets: 0, bytesInFlight: 0 };
      out.retransmissions = (out.retransmissions ?? 0) + (stats.retransmissions ?? 0);
      out.lostPackets = (out.lostPackets ?? 0) + (stats.lostPackets ?? 0);
      out.bytesInFlight = (out.bytesInFlight ?? 0) + (stats.bytesInFlight ?? 0);
      if (stats.srttMs !== undefined) out.srttMs = Math.min(out.srttMs ?? Infinity, stats.srttMs);
      if (stats.cwnd !== undefined) out.cwnd = Math.max(out.cwnd ?? 0, stats.cwnd);
    }
    return out;
  }

  /**
   * Registers a function listing queues at scrape time (e.g. one entry per peer with its
   * unresolved or sender queue depth).
   */
  registerQueueSource(
    list: () => Array<{ kind: QueueKind; depth: number; attributes?: Attributes }>
  ): () => void {
    this.queueSources.add(list);
    return () => this.queueSources.delete(list);
  }

  /** Queue depths summed by (kind, attributes). */
  queueDepths(): Array<{ attributes: Attributes; depth: number }> {
    const out: Array<{ attributes: Attributes; depth: number }> = [];
    for (const q of this.queues) {
      let depth = 0;
      try {
        depth = q.depth();
      } catch {
        continue;
      }
      out.push({ attributes: { 'meshwire.queue': q.kind, ...q.attributes }, depth });
    }
    for (const source of this.queueSources) {
      try {
        for (const q of source()) {
          out.push({ attributes: { 'meshwire.queue': q.kind, ...q.attributes }, depth: q.depth });
        }
      } catch {
        // skipped: telemetry never throws into the scrape
      }
    }
    return out;
  }

  /** Creates the observable instruments on `meter` (once per node). */
  attach(meter: Meter): void {
    const peerAttr = (peerId: string): Attributes => ({ 'meshwire.peer.id': peerId });
    const srtt = meter.createObservableGauge('meshwire.transport.srtt', {
      description: 'Smoothed round-trip time of the connection to a peer',
      unit: 's',
    });
    const cwnd = meter.createObservableGauge('meshwire.transport.cwnd', {
      description: 'Congestion window of the connection to a peer',
      unit: 'By',
    });
    const inFlight = meter.createObservableGauge('meshwire.transport.in_flight', {
      description: 'Bytes sent to a peer and not yet acknowledged',
      unit: 'By',
    });
    const connections = meter.createObservableGauge('meshwire.transport.connections', {
      description: 'Open transport connections, per peer',
      unit: '{connection}',
    });
    const retrans = meter.createObservableCounter('meshwire.transport.retransmissions', {
      description: 'Packets retransmitted to a peer',
      unit: '{packet}',
    });
    const lost = meter.createObservableCounter('meshwire.transport.packets.lost', {
      description: 'Packets declared lost (RFC 9002 loss detection), per peer',
      unit: '{packet}',
    });
    const sent = meter.createObservableCounter('meshwire.transport.packets.sent', {
      description: 'Packets sent to a peer',
      unit: '{packet}',
    });
    const received = meter.createObservableCounter('meshwire.transport.packets.received', {
      description: 'Packets received from a peer',
      unit: '{packet}',
    });
    const bytesSent = meter.createObservableCounter('meshwire.transport.sent', {
      description: 'Bytes sent to a peer (datagrams)',
      unit: 'By',
    });
    const bytesReceived = meter.createObservableCounter('meshwire.transport.received', {
      description: 'Bytes received from a peer (datagrams)',
      unit: 'By',
    });
    const dropped = meter.createObservableCounter('meshwire.transport.packets.dropped', {
      description: 'Packets dropped by the transport, by peer and reason',
      unit: '{packet}',
    });
    const datagramDrops = meter.createObservableCounter('meshwire.transport.datagrams.dropped', {
      description:
        'Datagrams dropped by the UDP socket, by reason (socket-level plus every connection)',
      unit: '{datagram}',
    });
    const info = meter.createObservableGauge('meshwire.transport.info', {
      description:
        'Always 1; the attributes say how the UDP socket protects packets and moves datagrams (aead, aead_backend, udp_driver)',
      unit: '1',
    });
    const secrets = meter.createObservableGauge('meshwire.cluster.secrets', {
      description:
        'Cluster secrets this node accepts (the first is sent with; 2 during a rotation)',
      unit: '{secret}',
    });
    const acceptedBySecret = meter.createObservableCounter('meshwire.cluster.handshakes.accepted', {
      description:
        'Peer connections accepted, by the index of the cluster secret their handshake matched (0 = the one this node sends with); a rotation is over when index 1 stops rising',
      unit: '{handshake}',
    });
    const secretReloads = meter.createObservableCounter('meshwire.cluster.secret.reloads', {
      description:
        'Cluster secret reloads: result ok, or failed with a reason (unreadable, invalid; the previous secrets stay)',
      unit: '{reload}',
    });
    const depth = meter.createObservableGauge('meshwire.queue.depth', {
      description: 'Items waiting in a bounded queue, by queue (unresolved, peer_sender...)',
      unit: '{message}',
    });
    meter.addBatchObservableCallback(
      (obs): void => {
        const live = this.liveStats();
        const perPeerConns = new Map<string, number>();
        for (const { peerId, stats } of live) {
          perPeerConns.set(peerId, (perPeerConns.get(peerId) ?? 0) + 1);
          const a = peerAttr(peerId);
          if (stats.srttMs !== undefined) obs.observe(srtt, stats.srttMs / 1000, a);
          if (stats.cwnd !== undefined) obs.observe(cwnd, stats.cwnd, a);
          if (stats.bytesInFlight !== undefined) obs.observe(inFlight, stats.bytesInFlight, a);
        }
        for (const [peerId, n] of perPeerConns) obs.observe(connections, n, peerAttr(peerId));
        for (const [peerId, t] of this.totals(live)) {
          const a = peerAttr(peerId);
          obs.observe(retrans, t.counters.retransmissions, a);
          obs.observe(lost, t.counters.lostPackets, a);
          obs.observe(sent, t.counters.packetsSent, a);
          obs.observe(received, t.counters.packetsReceived, a);
          obs.observe(bytesSent, t.counters.bytesSent, a);
          obs.observe(bytesReceived, t.counters.bytesReceived, a);
          for (const [reason, v] of Object.entries(t.drops)) {
            obs.observe(dropped, v, { ...a, reason });
          }
        }
        for (const q of this.queueDepths()) obs.observe(depth, q.depth, q.attributes);
        const socketDrops: Record<string, number> = {};
        for (const reason of this.knownDatagramDropReasons) socketDrops[reason] = 0;
        for (const sock of this.sockets) {
          try {
            const st = sock.stats();
            for (const [k, v] of Object.entries(st.drops ?? {})) {
              socketDrops[k] = (socketDrops[k] ?? 0) + v;
            }
            if (st.clusterSecrets !== undefined) obs.observe(secrets, st.clusterSecrets);
            st.handshakesAcceptedBySecret?.forEach((n, i) =>
              obs.observe(acceptedBySecret, n, { secret_index: String(i) })
            );
            for (const [k, n] of Object.entries(st.clusterSecretReloads ?? {})) {
              const attrs = k === 'ok' ? { result: 'ok' } : { result: 'failed', reason: k };
              obs.observe(secretReloads, n, attrs);
            }
            if (st.aead && st.aeadBackend) {
              obs.observe(info, 1, {
                aead: st.aead,
                aead_backend: st.aeadBackend,
                udp_driver: st.udpDriver ?? 'unknown',
              });
            }
          } catch {
            // a closed socket reports nothing
          }
        }
        for (const [reason, v] of Object.entries(socketDrops)) {
          obs.observe(datagramDrops, v, { reason });
        }
      },
      [
        srtt,
        cwnd,
        inFlight,
        connections,
        retrans,
        lost,
        sent,
        received,
        bytesSent,
        bytesReceived,
        dropped,
        datagramDrops,
        info,
        secrets,
        acceptedBySecret,
        secretReloads,
        depth,
      ]
    );
  }
}
