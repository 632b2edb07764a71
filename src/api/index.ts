/**
 * API: the gRPC face of a node (messaging.v1 Messenger and Peers, health, reflection),
 * the single error-to-status mapping, and client helpers. Its components (the gRPC
 * server, access control and limits, /metrics) are assembled with the node by src/app.
 */
export { GrpcApi, grpcExposure, listenError } from './server';
export type { GrpcApiInit } from './server';
export { ApiAccess } from './access';
export type { ApiAccessInit } from './access';
export { MetricsEndpoint } from './metrics-endpoint';
export type { MetricsEndpointInit } from './metrics-endpoint';
export type { ApiConfig } from './config';
export type { ApiGuard } from './auth-guard';
export type { TokenFileHandle } from './auth';
export type { TlsReloader } from './tls';
export { routeGrpcLogs } from './grpc-log';
export { grpcServerSpans } from './grpc-server-spans';
export { createClients } from './client';
export type { MeshwireClients, ClientInit } from './client';
export { clientSecurity } from './auth-client';
export type { ClientSecurityInit } from './auth-client';
export { toServiceError, grpcCodeOf } from './status';
export {
  PROTO_LOADER_OPTIONS,
  MESSAGING_PROTO,
  protoDir,
  messagingPackage,
  serviceConstructors,
} from './proto';
export type {
  WireMessage,
  WireTarget,
  WireDelivery,
  DeliveryBatch,
  SendRequest,
  SendResponse,
  SendStreamRequest,
  SendStreamResponse,
  SubscribeRequest,
  RequestRequest,
  RequestResponse,
  RequestStreamRequest,
  RequestStreamResponse,
  RespondRequest,
  RespondStreamResponse,
  RequestManyRequest,
  RequestManyResponse,
  WirePeerInfo,
} from './proto';
/** The generated service and message types of messaging.v1 (src/api/generated, `make types`). */
export type { ProtoGrpcType } from './generated/messaging';
