/**
 * meshwire as a library (package.json "main"): start a node in-process with the same
 * assembly `meshwire serve` runs, load its configuration, and talk to a node with the
 * gRPC client helpers.
 *
 * @example
 * const config = loadConfig({ argv: ['--grpc-listen', '127.0.0.1:0'], env: {} });
 * const node = await startNode({ config });
 * const clients = createClients(node.grpcAddress);
 * // ... clients.messenger.Send(...)
 * clients.close();
 * await node.shutdown();
 *
 * @packageDocumentation
 */
export { loadConfig, addConfigOptions, CONFIG_KEYS, assembleNode, startNode } from './app';
export type { NodeConfig, LoadConfigOptions, NodeApp, NodeAppInit, Component } from './app';
export { createClients, clientSecurity, protoDir, MESSAGING_PROTO, toServiceError } from './api';
export type {
  ClientInit,
  MeshwireClients,
  WireMessage,
  WireTarget,
  WireDelivery,
  DeliveryBatch,
  SendRequest,
  SendResponse,
  SubscribeRequest,
  RequestRequest,
  RequestResponse,
  RespondRequest,
  WirePeerInfo,
} from './api';
export type { ClientSecurityInit } from './api';
