/**
 * App: the layer above api and below cli, the one place a node is assembled from its
 * components (assembly.ts), started and stopped in order (lifecycle.ts), and the owner of
 * the configuration (config.ts, config-keys.ts). The CLI reaches everything through here:
 * config, logging and tracing for `serve`, the node, and the client helpers.
 */
export {
  loadConfig,
  addConfigOptions,
  assertClusterSecret,
  expandPeerDns,
  peerSeeds,
} from './config';
export type { LoadConfigOptions, PeerSeed } from './config';
export { CONFIG_KEYS } from './config-keys';
export type { NodeConfig } from './config-keys';
export { assembleNode, startNode } from './assembly';
export type { NodeApp, NodeAppInit } from './assembly';
export type { DatagramSocketFactory } from './peer-components';
export { startComponents, stopComponents } from './lifecycle';
export type { Component } from '../common';
export { createLogger, startTracing } from '../telemetry';
export type { Logger, TracingHandle } from '../telemetry';
export { createClients, clientSecurity, MESSAGING_PROTO, protoDir } from '../api';
export type {
  ClientInit,
  MeshwireClients,
  DeliveryBatch,
  RequestResponse,
  SendResponse,
  WirePeerInfo,
} from '../api';
