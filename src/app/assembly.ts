/**
 * The one place a node is assembled: components built in order (datagram socket ->
 * peer transport -> static peers, cluster and DNS resolver -> MeshNode -> auth and
 * limits -> gRPC server -> /metrics), started in that order and stopped in reverse
 * (lifecycle.ts has the drain order). `meshwire serve` and the tests run this same
 * assembly; tests pass a VirtualNetwork socket as the datagram socket, and may leave
 * gRPC out.
 */
import type { Clock, Component } from '../common';
import { CidrSet, DropLedger, formatHostPort, systemClock } from '../common';
import type { ApiGuard, TlsReloader, TokenFileHandle } from '../api';
import { ApiAccess, GrpcApi, MetricsEndpoint, grpcExposure, routeGrpcLogs } from '../api';
import type { ClusterHandler } from '../dispatch';
import { Cluster } from '../dispatch';
import { MeshNode } from '../node';
import { PeerDirectory } from '../peers';
import type { Logger } from '../telemetry';
import { silentLogger } from '../telemetry';
import type { RudpSocket } from '../transport';
import type { NodeConfig } from './config-keys';
import { startComponents, stopComponents } from './lifecycle';
import type { DatagramSocketFactory } from './peer-components';
import {
  ClusterComponent,
  DatagramComponent,
  DnsComponent,
  NodeComponent,
  PeerTransportComponent,
  StaticPeersComponent,
  replySecret,
} from './peer-components';

export interface NodeAppInit {
  config: NodeConfig;
  logger?: Logger;
  /** Timers of the node, its cluster and its transport. @default systemClock */
  clock?: Clock;
  /**
   * The datagram socket under the peer transport. @default a UDP socket bound on
   * peerListen with udpDriver; tests pass a VirtualNetwork socket.
   */
  datagramSocket?: DatagramSocketFactory;
  /** Serve the gRPC API (with auth, limits and /metrics). false: the node core only. @default true */
  grpc?: boolean;
  /** Start the /metrics endpoint (with gRPC only). @default true */
  metrics?: boolean;
  /** How often TLS, tokens and cluster secret files are checked for changes. @default 5000 */
  reloadIntervalMs?: number;
  /** DNS servers for peer names ("ip:port"), for tests with a local DNS server. */
  dnsServers?: string[];
  /** Re-resolve DNS peer names this often. @default 10000 */
  dnsIntervalMs?: number;
  /** Transport/mux keepalive for peer links (dead peers are noticed within about twice this). @default 1000 */
  peerPingIntervalMs?: number;
  /** Route grpc-js's own log lines to the logger as JSON (meshwire serve). @default false */
  grpcLogs?: boolean;
  /**
   * Where every drop of the node's components is counted and logged (src/common/drops.ts).
   * @default one ledger logging at debug through `logger`
   */
  drops?: DropLedger;
}

/** An assembled node: its components, then (after start()) its addresses. */
export interface NodeApp {
  readonly config: NodeConfig;
  readonly node: MeshNode;
  /** In start order. */
  readonly components: readonly Component[];
  /** The reliable-UDP peer transport (after start()), e.g. for its stats. */
  readonly peerTransport: RudpSocket;
  /** Bound gRPC port (resolved when grpcListen has port 0); throws without gRPC. */
  readonly grpcPort: number;
  /** "host:port" clients connect to; throws without gRPC. */
  readonly grpcAddress: string;
  readonly metricsPort: number | undefined;
  /** Authentication, topic permissions and per-client limits; throws without gRPC. */
  readonly guard: ApiGuard;
  /** Certificate reloads (undefined without TLS). */
  readonly tls: TlsReloader | undefined;
  /** Tokens file reloads (undefined with auth off). */
  readonly tokens: TokenFileHandle | undefined;
  /**
   * Starts every component in order. Rejects with a ListenError (one line: config key,
   * address, reason) if a listener cannot bind, after releasing what was already bound.
   */
  start(): Promise<void>;
  /** Safe close in the drain order (lifecycle.ts); resolves when everything is closed. Idempotent. */
  shutdown(): Promise<{ drained: boolean }>;
  /** Immediate stop (second signal). */
  forceShutdown(): void;
  /**
   * Reads the cluster secret file or directory now (SIGHUP) and applies a changed set;
   * false when unchanged or refused (logged and counted; the old set stays).
   */
  reloadClusterSecrets(): boolean;
}

/** Builds a node's components without starting them. */
export function assembleNode(init: NodeAppInit): NodeApp {
  const cfg = init.config;
  const log = init.logger ?? silentLogger();
  const transportLog = log.child({ component: 'transport' });
  if (init.grpcLogs) routeGrpcLogs(log); // grpc-js's own messages as JSON lines

  // One ledger for every drop of this node: totals that outlive their objects, debug logs.
  const drops =
    init.drops ?? new DropLedger({ clock: init.clock, logger: log.child({ component: 'drops' }) });
  const directory = new PeerDirectory();
  const datagram = new DatagramComponent(cfg, init.datagramSocket);
  const transport = new PeerTransportComponent({
    config: cfg,
    datagram,
    node: () => node,
    clock: init.clock,
    logger: transportLog,
    drops,
    reloadIntervalMs: init.reloadIntervalMs,
  });
  // The cluster calls into the node, which is built with the cluster: a handler that
  // forwards to the node once it exists (the cluster calls it only after start()).
  const handler: ClusterHandler = {
    onMessage: (message, origin, scope) => node.onMessage(message, origin, scope),
    onRequest: (message, origin, timeoutMs, signal) =>
      node.onRequest(message, origin, timeoutMs, signal),
    onRespond: (token, reply, responderPeer) => node.onRespond(token, reply, responderPeer),
    onPeerCall: (op, body, peerId, timeoutMs) => node.onPeerCall(op, body, peerId, timeoutMs),
    onPeerInterest: (peerId, update) => node.onPeerInterest(peerId, update),
    onPeerGone: peerId => node.onPeerGone(peerId),
    localInterests: () => node.localInterests(),
  };
  const ping = init.peerPingIntervalMs ?? 1000;
  const cluster = new Cluster({
    localId: cfg.nodeId,
    log: transportLog,
    drops,
    directory,
    handler,
    dial: (addr, timeoutMs, signal) =>
      transport.socket.connect(addr, { timeoutMs, signal }).then(c => transport.watch(c)),
    clock: init.clock ?? systemClock,
    maxMessageBytes: cfg.maxMessageBytes,
    unresolvedBytes: cfg.unresolvedQueueBytes,
    addressTargets: {
      enabled: cfg.addressTargets,
      maxSenders: cfg.maxAddressSenders,
      idleTimeoutMs: cfg.addressSenderIdleMs,
      allowed: cfg.addressTargetCidrs && new CidrSet(cfg.addressTargetCidrs),
    },
    pingIntervalMs: ping,
    pongTimeoutMs: ping * 3,
  });
  const node: MeshNode = new MeshNode({
    config: cfg,
    replySecret: replySecret(cfg),
    clock: init.clock,
    directory,
    cluster,
    peerAddress: () => transport.address() ?? cfg.peerListen,
    drops,
  });
  const nodeComponent = new NodeComponent(node);
  const components: Component[] = [
    datagram,
    transport,
    new StaticPeersComponent(cfg, directory),
    new ClusterComponent(cluster, transport),
    new DnsComponent(directory, {
      servers: init.dnsServers,
      intervalMs: init.dnsIntervalMs,
      clock: init.clock,
    }),
    nodeComponent,
  ];
  const grpcOn = init.grpc ?? true;
  const metricsOn = grpcOn && (init.metrics ?? true);
  let access: ApiAccess | undefined;
  let grpc: GrpcApi | undefined;
  let metrics: MetricsEndpoint | undefined;
  if (grpcOn) {
    access = new ApiAccess({
      config: cfg,
      logger: log,
      reloadIntervalMs: init.reloadIntervalMs,
      drops,
    });
    grpc = new GrpcApi({ config: cfg, node, access, logger: log, rpcMetrics: metricsOn });
    components.push(access, grpc);
    if (metricsOn) {
      const rpc = grpc;
      metrics = new MetricsEndpoint({
        config: cfg,
        node,
        access,
        rpcMetrics: () => rpc.rpcMetrics,
      });
      components.push(metrics);
    }
  }
  const requireGrpc = (): GrpcApi => {
    if (!grpc) throw new Error(`node ${cfg.nodeId} runs without gRPC (grpc: false)`);
    return grpc;
  };

  const start = async (): Promise<void> => {
    await startComponents(components);
    if (!grpc || !access) return;
    const exposure = grpcExposure(cfg);
    if (exposure.length > 0) {
      log.warn(
        {
          grpc: formatHostPort({ host: cfg.grpcListen.host, port: grpc.port }),
          exposure,
          fix: [
            ...(exposure.includes('plaintext') ? ['set tlsCertFile and tlsKeyFile'] : []),
            ...(exposure.includes('unauthenticated') ? ['set authTokensFile'] : []),
            'or bind grpcListen to 127.0.0.1',
          ].join('; '),
        },
        `SECURITY WARNING: gRPC is ${exposure.join(' and ')} on a non-loopback address: anyone who reaches it can ${exposure.includes('unauthenticated') ? 'send, subscribe and edit peers' : 'read the traffic'}`
      );
    }
    log.info(
      {
        grpc: `${cfg.grpcListen.host}:${grpc.port}`,
        metrics: metrics ? `${cfg.metricsListen.host}:${metrics.port}` : 'off',
        tls: access.tls ? (access.tls.credentials.mutual ? 'mtls' : 'tls') : 'off',
        auth: access.tokens ? authSummary(access.tokens.store) : 'off',
      },
      'meshwire node started'
    );
  };

  let closing: Promise<{ drained: boolean }> | undefined;
  const shutdown = (): Promise<{ drained: boolean }> =>
    (closing ??= (async () => {
      log.info({ in_flight: node.inFlightCount, drain_timeout_ms: cfg.drainTimeoutMs }, 'draining');
      await stopComponents(components);
      // Drops of the last components stopped still waiting for their rate-limited line.
      drops.flush();
      log.info({ drained: nodeComponent.drained }, 'meshwire node stopped');
      return { drained: nodeComponent.drained };
    })());

  return {
    config: cfg,
    node,
    components,
    get peerTransport() {
      return transport.socket;
    },
    get grpcPort() {
      return requireGrpc().port;
    },
    get grpcAddress() {
      return requireGrpc().address;
    },
    get metricsPort() {
      return metrics?.port;
    },
    get guard() {
      requireGrpc();
      return (access as ApiAccess).guard;
    },
    get tls() {
      return access?.tls;
    },
    get tokens() {
      return access?.tokens;
    },
    start,
    shutdown,
    reloadClusterSecrets: () => transport.reloadSecrets(),
    forceShutdown: () => {
      void access?.stop();
      grpc?.forceStop();
      void metrics?.stop();
    },
  };
}

/** Assembles a node and starts it (see NodeApp.start for the errors). */
export async function startNode(init: NodeAppInit): Promise<NodeApp> {
  const app = assembleNode(init);
  await app.start();
  return app;
}

/** "3 tokens", or "3 tokens (1 by client certificate)" with certificate entries. */
function authSummary(store: { size: number; certificateEntryCount: number }): string {
  const certs = store.certificateEntryCount;
  return `${store.size} tokens${certs > 0 ? ` (${certs} by client certificate)` : ''}`;
}
