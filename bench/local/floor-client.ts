/**
 * Client of the gRPC floor (floor-server.ts), in its own process.
 * Commands: `connect {port}`, `unaryLatency`, `unaryThroughput`, `streamRate`.
 */
import * as grpc from '@grpc/grpc-js';
import { join } from 'node:path';
import { BENCH_CHANNEL_OPTIONS, loadService, waitReady } from '../common/grpc';
import { repoRoot } from '../common/results';
import { serveWorker } from '../common/proc';
import { measureThroughput, measureRate } from '../common/load';
import { measureLatencyCpu } from '../common/cpu';
import type { LoopLimits } from '../common/load';

interface EchoMessage {
  payload: Buffer;
}

interface EchoClient extends grpc.Client {
  Unary(
    req: EchoMessage,
    cb: (err: grpc.ServiceError | null, res?: EchoMessage) => void
  ): grpc.ClientUnaryCall;
  ServerStream(req: {
    payload: Buffer;
    maxMessages: number;
    maxMs: number;
  }): grpc.ClientReadableStream<EchoMessage>;
}

const echo = loadService(join(repoRoot(), 'bench', 'local', 'echo.proto'), 'bench.echo.v1.Echo');
let client: EchoClient | undefined;

function c(): EchoClient {
  if (!client) throw new Error('not connected');
  return client;
}

function unary(payload: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    c().Unary({ payload }, (err, res) => {
      if (err) reject(err);
      else if (res?.payload.length !== payload.length) reject(new Error('bad echo'));
      else resolve();
    });
  });
}

interface Params extends LoopLimits {
  size: number;
  concurrency?: number;
  /** Processes whose CPU per call to report (the floor server). */
  cpuPids?: number[];
}

serveWorker(
  {
    connect: async (p: { port: number }) => {
      client = new echo.ctor(
        `127.0.0.1:${p.port}`,
        grpc.credentials.createInsecure(),
        BENCH_CHANNEL_OPTIONS
      ) as unknown as EchoClient;
      await waitReady(client);
      return {};
    },
    unaryLatency: (p: Params) => {
      const payload = Buffer.alloc(p.size, 7);
      return measureLatencyCpu(() => unary(payload), p, p.cpuPids);
    },
    unaryThroughput: (p: Params) => {
      const payload = Buffer.alloc(p.size, 7);
      return measureThroughput(() => unary(payload), p.concurrency ?? 64, p);
    },
    streamRate: async (p: Params) => {
      let received = 0;
      let bad = 0;
      const stream = c().ServerStream({
        payload: Buffer.alloc(p.size, 7),
        maxMessages: p.maxOps,
        maxMs: p.warmupMs + p.durationMs + 5_000,
      });
      stream.on('data', (m: EchoMessage) => {
        if (m.payload.length === p.size) received++;
        else bad++;
      });
      const ended = new Promise<void>(resolve => {
        stream.on('error', () => resolve());
        stream.on('end', () => resolve());
      });
      const r = await measureRate(() => received, p.warmupMs, p.durationMs);
      stream.cancel();
      await ended;
      return { ...r, bad };
    },
  },
  {},
  () => client?.close()
);
