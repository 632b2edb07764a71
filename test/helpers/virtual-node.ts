/**
 * In-process nodes whose peer transport runs over the seeded virtual network
 * (src/transport/virtual/virtual-network.ts): loss, duplication, reordering and delay without
 * sockets. They are the production assembly (src/app) with a VirtualNetwork socket as
 * the datagram socket, nothing re-implemented. Their peer addresses are virtual and not
 * loopback, so they share a cluster secret file (the development secret is refused off
 * loopback).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeApp, NodeAppInit, NodeConfig } from '../../src/app';
import { loadConfig, startNode } from '../../src/app';
import type { VirtualNetwork } from '../../src/transport';
import type { TestNode } from './node';
import { withClients } from './node';

/** The UDP port every virtual node listens on (each has its own virtual host). */
export const VIRTUAL_PEER_PORT = 7401;

let secretFile: string | undefined;

/** A cluster secret file shared by every virtual node of this process. */
function virtualClusterSecret(): string {
  if (!secretFile) {
    secretFile = join(mkdtempSync(join(tmpdir(), 'mw-virtual-')), 'secret');
    writeFileSync(secretFile, 'the virtual cluster of this test process\n');
  }
  return secretFile;
}

/** The config of a virtual node: gRPC on loopback, peers on `host`:7401 of the network. */
export function virtualConfig(id: string, host: string): NodeConfig {
  return {
    ...loadConfig({
      argv: [
        '--grpc-listen',
        '127.0.0.1:0',
        '--peer-listen',
        `${host}:${VIRTUAL_PEER_PORT}`,
        '--cluster-secret-file',
        virtualClusterSecret(),
      ],
      env: {},
    }),
    nodeId: id,
  };
}

/**
 * Starts the production assembly with its peer transport on `host`:7401 of `net`;
 * `init` adds or overrides assembly options (grpc: false for the node core only).
 */
export function startVirtualApp(
  net: VirtualNetwork,
  id: string,
  host: string,
  init: Omit<NodeAppInit, 'config' | 'datagramSocket'> = {}
): Promise<NodeApp> {
  return startNode({
    config: virtualConfig(id, host),
    metrics: false,
    datagramSocket: () => net.socket(host, VIRTUAL_PEER_PORT),
    ...init,
  });
}

/** A node with gRPC on loopback and its peer transport on `host`:7401 of `net`. */
export async function virtualNode(
  net: VirtualNetwork,
  id: string,
  host: string
): Promise<TestNode> {
  return withClients(await startVirtualApp(net, id, host));
}
