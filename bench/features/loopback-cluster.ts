/**
 * The cluster the feature benches (bench/features/*.ts) run on: `meshwire serve` processes
 * on loopback, each listing all the others as static peers.
 */
import { join } from 'node:path';
import type { ServerHandle } from '../common/proc';
import { freeTcpPort, freeUdpPort, startServer, tcpAccepts } from '../common/proc';
import { repoRoot } from '../common/results';

export interface LoopbackCluster {
  /** One per id, in the order of `ids`. */
  servers: ServerHandle[];
  /** The nodes' gRPC addresses (127.0.0.1:port), in the order of `ids`. */
  grpc: string[];
}

/**
 * Starts one node per id, in parallel; each is ready once its gRPC port accepts.
 * `extraArgs` are added to every node's `serve` flags; `env` replaces the environment.
 * All or nothing: when one node fails to start, the others are killed and the error thrown.
 */
export async function startLoopbackCluster(
  ids: readonly string[],
  opts: { extraArgs?: string[]; env?: NodeJS.ProcessEnv } = {}
): Promise<LoopbackCluster> {
  const ports: Array<{ grpc: number; peer: number; metrics: number }> = [];
  for (let i = 0; i < ids.length; i++) {
    ports.push({
      grpc: await freeTcpPort(),
      peer: await freeUdpPort(),
      metrics: await freeTcpPort(),
    });
  }
  const peers = ids.map((id, i) => `${id}=127.0.0.1:${ports[i].peer}`).join(',');
  const main = join(repoRoot(), 'dist', 'src', 'cli', 'main.js');
  const started = await Promise.allSettled(
    ids.map((id, i) =>
      startServer({
        name: `meshwire ${id}`,
        command: process.execPath,
        args: [
          main,
          'serve',
          '--node-id',
          id,
          '--grpc-listen',
          `127.0.0.1:${ports[i].grpc}`,
          '--peer-listen',
          `127.0.0.1:${ports[i].peer}`,
          '--metrics-listen',
          `127.0.0.1:${ports[i].metrics}`,
          '--peers',
          peers,
          ...(opts.extraArgs ?? []),
        ],
        env: opts.env,
        ready: () => tcpAccepts('127.0.0.1', ports[i].grpc),
        readyTimeoutMs: 60_000,
      })
    )
  );
  const failed = started.find(s => s.status === 'rejected');
  if (failed) {
    for (const s of started) if (s.status === 'fulfilled') s.value.child.kill('SIGKILL');
    throw (failed as PromiseRejectedResult).reason;
  }
  return {
    servers: started.map(s => (s as PromiseFulfilledResult<ServerHandle>).value),
    grpc: ports.map(p => `127.0.0.1:${p.grpc}`),
  };
}
