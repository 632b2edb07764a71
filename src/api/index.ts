/**
 * API: the gRPC face of a node (messaging.v1 Messenger and Peers, health, reflection),
 * the single error-to-status mapping, and client helpers.
 */
export { startMeshwire } from './server';
export type { MeshwireServer, MeshwireServerInit } from './server';
export { createClients } from './client';
export type { MeshwireClients, ClientInit } from './client';
export { toServiceError, grpcCodeOf } from './status';
export { PROTO_LOADER_OPTIONS, protoDir, messagingPackage, serviceConstructors } from './proto';
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
  WirePeerInfo,
} from './proto';
