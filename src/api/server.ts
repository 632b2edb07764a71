/**
 * The gRPC front of a node: Messenger and Peers services, grpc.health.v1 and server
 * reflection (src/api/reflection.ts), as a component: start() binds grpcListen,
 * beforeStop() turns health to NOT_SERVING (the node then drains), stop() ends subscriber
 * streams and closes. src/app assembles it with the node, access and /metrics.
 */
import type { Http2Server } from 'node:http2';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { Component, HostPort } from '../common';
import {
  LATENCY_TRACE,
  formatHostPort,
  isLoopbackHost,
  ListenError,
  systemErrorReason,
} from '../common';
import type { MeshNode } from '../node';
import type { Logger } from '../telemetry';
import { messagingTracingEnabled } from '../telemetry';
import { grpcServerSpans } from './grpc-server-spans';
import type { ApiAccess } from './access';
import { fastMessengerDefinition, strictPeersDefinition } from './codec';
import type { ApiConfig } from './config';
import { closeDeadSessions, limitHeaderList } from './metadata-limit';
import type { ActiveStreams } from './messenger-service';
import { messengerService } from './messenger-service';
import { RpcMetrics } from './rpc-metrics';
import { peersService } from './peers-service';
import { serviceConstructors } from './proto';
import { REFLECTION_SERVICES, Reflection, addReflection, loadDescriptorSet } from './reflection';
import { rejectMalformedBodies, withTolerantDeserializers } from './request-body';
import { latencyStamps } from './latency-interceptor';

/** Room for protobuf framing and headers above the largest payload. */
const GRPC_MESSAGE_OVERHEAD = 4 * 1024 * 1024;

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
export function listenError(key: string, addr: HostPort, err: unknown): ListenError {
  return new ListenError(key, formatHostPort(addr), systemErrorReason(err), { cause: err });
}

/**
 * What is exposed beyond this machine without protection: gRPC on a non-loopback address
 * without TLS (plaintext) and/or without tokens (unauthenticated). Empty when safe.
 */
export function grpcExposure(
  cfg: Pick<ApiConfig, 'grpcListen' | 'tlsCertFile' | 'tlsKeyFile' | 'authTokensFile'>
): string[] {
  if (isLoopbackHost(cfg.grpcListen.host)) return [];
  const out: string[] = [];
  if (!(cfg.tlsCertFile && cfg.tlsKeyFile)) out.push('plaintext');
  if (!cfg.authTokensFile) out.push('unauthenticated');
  return out;
}

/** Names health answers for: the server as a whole and each service. */
const HEALTH_SERVICES = ['', 'messaging.v1.Messenger', 'messaging.v1.Peers'];

export interface GrpcApiInit {
  config: ApiConfig;
  node: MeshNode;
  /** Tokens, TLS and limits; started before this. */
  access: ApiAccess;
  logger: Logger;
  /** Count calls by method and status (for /metrics). @default true */
  rpcMetrics?: boolean;
}

export class GrpcApi implements Component {
  readonly name = 'grpc server';
  /** Calls by method and status; every Messenger and Peers method counted from the start. */
  readonly rpcMetrics: RpcMetrics | undefined;
  private server: Server | undefined;
  private health: HealthImplementation | undefined;
  private portValue: number | undefined;
  private readonly active: ActiveStreams = { subscriptions: new Set() };
  private stopSessionWatch = (): void => undefined;

  constructor(private readonly init: GrpcApiInit) {
    const { Messenger, Peers } = serviceConstructors();
    this.rpcMetrics =
      (init.rpcMetrics ?? true)
        ? new RpcMetrics(
            [Messenger.service, Peers.service].flatMap(svc => Object.values(svc).map(m => m.path))
          )
        : undefined;
  }

  /** Bound gRPC port (resolved when grpcListen has port 0). */
  get port(): number {
    if (this.portValue === undefined) throw new Error('GrpcApi.port before start()');
    return this.portValue;
  }

  /** "host:port" clients connect to (loopback for a wildcard listen address). */
  get address(): string {
    const host = this.init.config.grpcListen.host;
    const grpcHost = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
    return formatHostPort({ host: grpcHost, port: this.port });
  }

  /** Builds the server and binds grpcListen; rejects with a ListenError naming it. */
  async start(): Promise<void> {
    const { config: cfg, node, access, logger: log } = this.init;
    const guard = access.guard;
    const maxMessage = cfg.maxMessageBytes + GRPC_MESSAGE_OVERHEAD;
    const { Messenger, Peers } = serviceConstructors();
    const interceptors = [
      // MESHWIRE_LATENCY_TRACE=1 only: where a Request's latency record begins and ends
      ...(LATENCY_TRACE ? [latencyStamps] : []),
      // calls first (every status counted), then server spans (the span covers the whole
      // call, auth refusals included), then the guard
      ...(this.rpcMetrics ? [this.rpcMetrics.interceptor] : []),
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
      messengerService(node, log.child({ component: 'api' }), this.active, guard)
    );
    server.addService(
      withTolerantDeserializers(strictPeersDefinition(Peers.service)),
      peersService(node, log.child({ component: 'peers-api' }))
    );
    const health = new HealthImplementation(
      Object.fromEntries(HEALTH_SERVICES.map(name => [name, 'SERVING']))
    );
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
    try {
      this.portValue = await new Promise<number>((resolve, reject) => {
        const creds = access.tls?.credentials ?? ServerCredentials.createInsecure();
        server.bindAsync(formatHostPort(cfg.grpcListen), creds, (err, port) =>
          err ? reject(err) : resolve(port)
        );
      });
    } catch (err) {
      server.forceShutdown();
      throw listenError('grpcListen', cfg.grpcListen, err);
    }
    this.server = server;
    this.health = health;
    widenHttp2Windows(server);
    this.stopSessionWatch = closeDeadSessions(server);
  }

  /** Health turns NOT_SERVING; calls keep working while the node drains. */
  beforeStop(): Promise<void> {
    for (const name of HEALTH_SERVICES) this.health?.setStatus(name, 'NOT_SERVING');
    return Promise.resolve();
  }

  /** Ends subscriber streams, then closes (forcibly after 2 s). */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const sub of this.active.subscriptions) sub.close(null);
    if (server) {
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
    }
    this.stopSessionWatch();
  }

  /** Immediate stop (a second signal): every call ends now. */
  forceStop(): void {
    this.stopSessionWatch();
    this.server?.forceShutdown();
  }
}
