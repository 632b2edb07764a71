/**
 * In-process nodes whose peer transport runs over the seeded virtual network
 * (src/transport/virtual/virtual-network.ts): loss, duplication, reordering and delay without
 * sockets. Their peer addresses are virtual and not loopback, so they share a cluster
 * secret file (the development secret is refused off loopback).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClients, startMeshwire } from '../../src/api';
import { systemClock } from '../../src/common';
import { loadConfig } from '../../src/node';
import type { VirtualNetwork } from '../../src/transport';
import { RudpSocket } from '../../src/transport';
import type { TestNode } from './node';

let secretFile: string | undefined;

/** A cluster secret file shared by every virtual node of this process. */
function virtualClusterSecret(): string {
  if (!secretFile) {
    secretFile = join(mkdtempSync(join(tmpdir(), 'mw-virtual-')), 'secret');
    writeFileSync(secretFile, 'the virtual cluster of this test process\n');
  }
  return secretFile;
}

/** A node with gRPC on loopback and its peer transport on `host`:7401 of `net`. */
export async function virtualNode(
  net: VirtualNetwork,
  id: string,
  host: string
): Promise<TestNode> {
  const sock = await RudpSocket.bind({ socket: net.socket(host, 7401), clock: systemClock });
  const config = {
    ...loadConfig({
      argv: [
        '--grpc-listen',
        '127.0.0.1:0',
        '--peer-listen',
        `${host}:7401`,
        '--cluster-secret-file',
        virtualClusterSecret(),
      ],
      env: {},
    }),
    nodeId: id,
  };
  const server = await startMeshwire({
    config,
    metrics: false,
    node: {
      transport: {
        dial: (addr, timeoutMs) => sock.connect(addr, { timeoutMs }),
        onAccept: accept => sock.on('connection', accept),
        close: () => sock.close(),
      },
    },
  });
  const clients = createClients(server.grpcAddress);
  return {
    server,
    clients,
    address: server.grpcAddress,
    close: async () => {
      clients.close();
      await server.shutdown();
    },
  };
}
