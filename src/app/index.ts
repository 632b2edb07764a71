/**
 * App: the layer above api and below cli, the one place a node is assembled from its
 * components (assembly.ts), started and stopped in order (lifecycle.ts), and the owner of
 * the configuration (config.ts, config-keys.ts). The CLI reaches everything through here.
 *
 * Only the configuration loads with this module. The node side and the client helpers
 * are loaded on first use: `meshwire --help` and the client commands do not load the
 * node, and `meshwire serve` starts tracing (loadProcessTelemetry) before the gRPC
 * stack loads (startNode).
 */
import type * as Assembly from './assembly';
import type { NodeApp, NodeAppInit } from './assembly';
import type * as ClientHelpers from './client-helpers';
import type * as ProcessTelemetry from './process-telemetry';

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
export type { NodeApp, NodeAppInit } from './assembly';
export type { DatagramSocketFactory } from './peer-components';
export { startComponents, stopComponents } from './lifecycle';
export type { Component } from '../common';
export type { Logger, TracingHandle } from '../telemetry';
export type {
  ClientInit,
  ClientSecurityInit,
  MeshwireClients,
  DeliveryBatch,
  RequestResponse,
  RequestManyResponse,
  SendResponse,
  WireDelivery,
  WireMessage,
  WirePeerInfo,
} from '../api';

function assembly(): Promise<typeof Assembly> {
  return import('./assembly');
}

/** Builds a node's components without starting them (assembly.ts). */
export async function assembleNode(init: NodeAppInit): Promise<NodeApp> {
  return (await assembly()).assembleNode(init);
}

/**
 * Assembles a node and starts it: rejects with a ListenError (config key, address,
 * reason) if a listener cannot bind, after releasing what was already bound.
 */
export async function startNode(init: NodeAppInit): Promise<NodeApp> {
  return (await assembly()).startNode(init);
}

/** The logger and tracing start-up of a node process (loads no gRPC). */
export function loadProcessTelemetry(): Promise<typeof ProcessTelemetry> {
  return import('./process-telemetry');
}

/** createClients, clientSecurity and the proto files, for gRPC clients of a node. */
export function loadClientHelpers(): Promise<typeof ClientHelpers> {
  return import('./client-helpers');
}
