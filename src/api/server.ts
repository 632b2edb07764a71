import type { Http2Server } from 'node:http2';
/**
 * The gRPC front of a node: Messenger and Peers services, grpc.health.v1, server
 * reflection (src/api/reflection.ts) and the /metrics endpoint, with a safe close: stop accepting,
 * drain in-flight work, end subscriber streams, close.
 */
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { HostPort } from '../common';
import { LATENCY_TRACE } from '../common';
import {
  DropLedger,
  formatHostPort,
  isLoopbackHost,
  isMeshwireError,
  ListenError,
  systemErrorReason,
} from '../common';
import type { MeshNodeInit, NodeConfig } from '../node';
import { MeshNode } from '../node';
import type { Logger, MetricsServer } from '../telemetry';
import { grpcServerSpans, messagingTracingEnabled, silentLogger, startMetrics } from '../telemetry';
import type { TokenFileHandle } from './auth';
import { watchTokensFile } from './auth';
import { ApiGuard, registerGuardMetrics } from './auth-guard';
import { fastMessengerDefinition, strictPeersDefinition } from './codec';
import { ClientLimits, MemoryBudget, registerLimitMetrics } from './limits';
import { closeDeadSessions, limitHeaderList } from './metadata-limit';
import type { ActiveStreams } from './messenger-service';
import { messengerService } from './messenger-service';
import { registerNodeMetrics } from './node-metrics';
import { RpcMetrics } from './rpc-metrics';
import { peersService } from './peers-service';
import { serviceConstructors } from './proto';
import { REFLECTION_SERVICES, Reflection, addReflection, loadDescriptorSet } from './reflection';
import { rejectMalformedBodies, withTolerantDeserializers } from './request-body';
import { latencyStamps } from './latency-interceptor';
import type { TlsReloader } from './tls';
import { DEFAULT_RELOAD_INTERVAL_MS, startTlsReloader } from './tls';

/** Room for protobuf framing and headers above the largest payload. */
const GRPC_MESSAGE_OVERHEAD = 4 * 1024 * 1024;

export interface MeshwireServerInit {
  config: NodeConfig;
  logger?: Logger;
  /** Start the /metrics endpoint. @default true */
  metrics?: boolean;
  /** Node options beyond the config (peer transport, DNS servers, keepalive) for tests. */
  node?: Omit<MeshNodeInit, 'config'>;
  /** How often TLS and tokens files are checked for changes. @default 5000 */
  reloadIntervalMs?: number;
}

export interface MeshwireServer {
  readonly node: MeshNode;
  /** Bound gRPC port (resolved when grpcListen has port 0). */
  readonly grpcPort: number;
  /** "host:port" clients connect to. */
  readonly grpcAddress: string;
  readonly metricsPort: number | undefined;
  /** Authentication, topic permissions and per-client limits (auth-guard.ts). */
  readonly guard: ApiGuard;
  /** Certificate reloads (undefined without TLS). */
  readonly tls: TlsReloader | undefined;
  /** Tokens file reloads (undefined with auth off). */
  readonly tokens: TokenFileHandle | undefined;
  /** Safe close; resolves when everything is closed. Idempotent. */
  shutdown(): Promise<{ drained: boolean }>;
  /** Immediate stop (second signal). */
  forceShutdown(): void;
}

/** HTTP/2 receive windows for client connections (per stream and per connection). */
const HTTP2_STREAM_WINDOW_BYTES = 4 * 1024 * 1024;
const HTTP2_CONNECTION_WINDOW_BYTES = 16 * 1024 * 1024;

/**
 * grpc-js servers keep HTTP/2's default 64 KiB receive window and offer no option for it,
 * so a high-rate SendStream publisher stalls waiting for window updates (pub/sub at
 * 16 KiB). Widen the windows of every session as it starts. grpc-js does not expose its
 * HTTP/2 servers, so this reads a private field; if that ever changes, nothing breaks,
 * the windows just stay at the default.
 */
function widenHttp2Windows(server: Server): void {
  const h2 = (server as unknown as { http2Servers?: Map<Http2Server, unknown> }).http2Servers;
  if (!(h2 instanceof Map)) return;
  for (const s of h2.keys()) {
    s.on('session', session => {
      try {
        session.settings({ initialWindowSize: HTTP2_STREAM_WINDOW_BYTES });
        session.setLocalWindowSize(HTTP2_CONNECTION_WINDOW_BYTES);
      } catch {
        // A session closing as it opens: keep the defaults.
      }
    });
  }
}

/** A ListenError for a listener that could not bind: key, address and the system's reason. */
function listenError(key: string, addr: HostPort, err: unknown): ListenError {
  return new ListenError(key, formatHostPort(addr), systemErrorReason(err), { cause: err });
}

/**
 * What is exposed beyond this machine without protection: gRPC on a non-loopback address
 * without TLS (plaintext) and/or without tokens (unauthenticated). Empty when safe.
 */
export function grpcExposure(cfg: NodeConfig): string[] {
  if (isLoopbackHost(cfg.grpcListen.host)) return [];
  const out: string[] = [];
  if (!(cfg.tlsCertFile && cfg.tlsKeyFile)) out.push('plaintext');
  if (!cfg.authTokensFile) out.push('unauthenticated');
  return out;
}

/**
 * Starts a node with its gRPC server. Rejects with a ListenError (one line: config key,
 * address, reason) if a listener cannot bind, after releasing what was already bound.
 */
export async function startMeshwire(init: MeshwireServerInit): Promise<MeshwireServer> {
  const cfg = init.config;
  const log = init.logger ?? silentLogger();
  const node = new MeshNode({
    config: cfg,
    logger: log.child({ component: 'transport' }),
    drops: new DropLedger({ clock: init.node?.clock, logger: log.child({ component: 'drops' }) }),
    ...init.node,
  });
  try {
    await node.start();
  } catch (err) {
    // Our own errors (a bad secret, an AEAD backend this machine lacks) say what is wrong.
    throw isMeshwireError(err) ? err : listenError('peerListen', cfg.peerListen, err);
  }
  // Stops the peer transport when a later listener fails (nothing is in flight yet).
  const releaseNode = (): Promise<unknown> => node.drain(0).catch(() => undefined);
  const active: ActiveStreams = { subscriptions: new Set() };
  const reloadMs = init.reloadIntervalMs ?? DEFAULT_RELOAD_INTERVAL_MS;
  let sweep = (): void => undefined;
  const tokens = cfg.authTokensFile
    ? watchTokensFile(
        cfg.authTokensFile,
        log.child({ component: 'auth' }),
        reloadMs,
        undefined,
        undefined,
        () => sweep()
      )
    : undefined;
  const tls =
    cfg.tlsCertFile && cfg.tlsKeyFile
      ? startTlsReloader(
          { certFile: cfg.tlsCertFile, keyFile: cfg.tlsKeyFile, clientCaFile: cfg.tlsClientCaFile },
          log.child({ component: 'tls' }),
          reloadMs
        )
      : undefined;
  const guard = new ApiGuard({
    tokens: tokens?.store,
    limits: new ClientLimits(cfg),
    budget: new MemoryBudget(cfg.memoryBudgetBytes, node.dropLedger),
    log: log.child({ component: 'auth' }),
  });
  sweep = () => {
    const ended = guard.sweep();
    if (ended > 0) log.info({ streams: ended }, 'ended streams of removed or expired tokens');
  };
  let stopSessionWatch = (): void => undefined;
  const stopWatchers = (): void => {
    tls?.stop();
    tokens?.stop();
    stopSessionWatch();
  };

  const maxMessage = cfg.maxMessageBytes + GRPC_MESSAGE_OVERHEAD;
  const { Messenger, Peers } = serviceConstructors();
  const metricsOn = init.metrics ?? true;
  // Calls by method and status; every Messenger and Peers method is exported from the start.
  const rpcMetrics = metricsOn
    ? new RpcMetrics(
        [Messenger.service, Peers.service].flatMap(svc => Object.values(svc).map(m => m.path))
      )
    : undefined;
  const interceptors = [
    // MESHWIRE_LATENCY_TRACE=1 only: where a Request's latency record begins and ends
    ...(LATENCY_TRACE ? [latencyStamps] : []),
    // calls first (every status counted), then server spans (the span covers the whole
    // call, auth refusals included), then the guard
    ...(rpcMetrics ? [rpcMetrics.interceptor] : []),
    ...(messagingTracingEnabled() ? [grpcServerSpans] : []),
    guard.interceptor,
    // malformed bodies last, so their INVALID_ARGUMENT passes through the others
    rejectMalformedBodies,
  ];
  const server = new Server({
    'grpc.max_receive_message_length': maxMessage,
    'grpc.max_send_message_length': maxMessage,
    'grpc.keepalive_time_ms': 60_000,
    'grpc.keepalive_permit_without_calls': 1,
    interceptors,
  });
  limitHeaderList(server);
  server.addService(
    withTolerantDeserializers(fastMessengerDefinition(Messenger.service)),
    messengerService(node, log.child({ component: 'api' }), active, guard)
  );
  server.addService(
    withTolerantDeserializers(strictPeersDefinition(Peers.service)),
    peersService(node, log.child({ component: 'peers-api' }))
  );
  const health = new HealthImplementation({
    '': 'SERVING',
    'messaging.v1.Messenger': 'SERVING',
    'messaging.v1.Peers': 'SERVING',
  });
  health.addToServer(server);
  addReflection(
    server,
    new Reflection(loadDescriptorSet(), [
      'messaging.v1.Messenger',
      'messaging.v1.Peers',
      'grpc.health.v1.Health',
      ...REFLECTION_SERVICES,
    ])
  );

  let grpcPort: number;
  try {
    grpcPort = await new Promise<number>((resolve, reject) => {
      const creds = tls?.credentials ?? ServerCredentials.createInsecure();
      server.bindAsync(formatHostPort(cfg.grpcListen), creds, (err, port) =>
        err ? reject(err) : resolve(port)
      );
    });
  } catch (err) {
    stopWatchers();
    server.forceShutdown();
    await releaseNode();
    throw listenError('grpcListen', cfg.grpcListen, err);
  }

  widenHttp2Windows(server);
  stopSessionWatch = closeDeadSessions(server);

  let metrics: MetricsServer | undefined;
  if (metricsOn) {
    try {
      metrics = await startMetrics(cfg.metricsListen.host, cfg.metricsListen.port, {
        nodeId: cfg.nodeId,
      });
      registerNodeMetrics(metrics.meter, node);
      rpcMetrics?.attach(metrics.meter);
      registerLimitMetrics(metrics.meter, guard.limits, guard.budget);
      registerGuardMetrics(metrics.meter, guard);
    } catch (err) {
      stopWatchers();
      server.forceShutdown();
      await releaseNode();
      throw listenError('metricsListen', cfg.metricsListen, err);
    }
  }
  const exposure = grpcExposure(cfg);
  if (exposure.length > 0) {
    log.warn(
      {
        grpc: formatHostPort({ host: cfg.grpcListen.host, port: grpcPort }),
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
      grpc: `${cfg.grpcListen.host}:${grpcPort}`,
      metrics: metrics ? `${cfg.metricsListen.host}:${metrics.port}` : 'off',
      tls: tls ? (tls.credentials.mutual ? 'mtls' : 'tls') : 'off',
      auth: tokens ? `${tokens.store.size} tokens` : 'off',
    },
    'meshwire node started'
  );

  let closing: Promise<{ drained: boolean }> | undefined;
  const shutdown = (): Promise<{ drained: boolean }> =>
    (closing ??= (async () => {
      log.info({ in_flight: node.inFlightCount, drain_timeout_ms: cfg.drainTimeoutMs }, 'draining');
      for (const name of ['', 'messaging.v1.Messenger', 'messaging.v1.Peers']) {
        health.setStatus(name, 'NOT_SERVING');
      }
      // New calls are refused by the node while it drains; in-flight ones finish.
      const result = await node.drain();
      for (const sub of active.subscriptions) sub.close(null);
      await new Promise<void>(resolve => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      await metrics?.shutdown();
      stopWatchers();
      log.info({ drained: result.drained }, 'meshwire node stopped');
      return result;
    })());

  const grpcHost =
    cfg.grpcListen.host === '0.0.0.0'
      ? '127.0.0.1'
      : cfg.grpcListen.host === '::'
        ? '::1'
        : cfg.grpcListen.host;
  return {
    node,
    grpcPort,
    grpcAddress: formatHostPort({ host: grpcHost, port: grpcPort }),
    metricsPort: metrics?.port,
    guard,
    tls,
    tokens,
    shutdown,
    forceShutdown: () => {
      stopWatchers();
      server.forceShutdown();
      void metrics?.shutdown();
    },
  };
}
