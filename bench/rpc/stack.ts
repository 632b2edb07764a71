/** The mux + rpc stack as the benchmark builds it over any duplex (TCP, reliable UDP). */
import type { Duplex } from 'node:stream';
import { Mux } from '../../src/mux';
import { RpcConnection } from '../../src/rpc';

export const RPC_CHANNEL = 1;

export const BENCH_CHANNELS = [
  { id: 0, priority: 1, urgent: true, maxMessageBytes: 64 * 1024 },
  { id: RPC_CHANNEL, priority: 4, sendQueueCapacity: 1024, maxMessageBytes: 1024 * 1024 },
];

export interface Stack {
  mux: Mux;
  rpc: RpcConnection;
}

/** Builds mux + rpc on a connection; `echo` makes it answer every request with its body. */
export function createStack(conn: Duplex, echo: boolean): Stack {
  const mux = new Mux(conn, { channels: BENCH_CHANNELS });
  const rpc = new RpcConnection(mux, {
    channelId: RPC_CHANNEL,
    maxInFlight: 1024,
    maxConcurrentHandlers: 1024,
  });
  if (echo) rpc.setHandler(req => ({ body: req.body }));
  return { mux, rpc };
}
