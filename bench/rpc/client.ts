/**
 * Benchmark requester, in its own process: keeps `inFlight` requests outstanding over
 * mux + rpc (TCP or reliable UDP) or NATS request/reply, and reports ops/s and latency
 * percentiles (HDR histogram) of what completed inside the measurement window.
 */
import { connect as tcpConnect } from 'node:net';
import { connect } from 'nats';
import type { NatsConnection } from 'nats';
import { LatencyRecorder } from '../common/hist';
import { serveWorker } from '../common/proc';
import { createStack } from './stack';
import type { Stack } from './stack';
import { dialRudp } from './rudp';

export interface RunParams {
  size: number;
  inFlight: number;
  warmupMs: number;
  durationMs: number;
  maxOps: number;
  timeoutMs: number;
}

export interface RunResult {
  rps: number;
  p50_us: number;
  p99_us: number;
  max_us: number;
  count: number;
  errors: number;
  firstError?: string;
}

const SUBJECT = 'bench.rpc';
let op: ((payload: Buffer, timeoutMs: number) => Promise<number>) | undefined;
let stack: Stack | undefined;
let nc: NatsConnection | undefined;
let closeRudp: (() => Promise<void>) | undefined;

function useStack(s: Stack): void {
  stack = s;
  op = async (payload, timeoutMs) =>
    (await s.rpc.request({ body: payload }, { timeoutMs })).body.length;
}

async function run(p: RunParams): Promise<RunResult> {
  const call = op;
  if (!call) throw new Error('not connected');
  const payload = Buffer.alloc(p.size, 7);
  const rec = new LatencyRecorder();
  const now = (): bigint => process.hrtime.bigint();
  const t0 = now();
  const warmEnd = t0 + BigInt(p.warmupMs) * 1_000_000n;
  const end = warmEnd + BigInt(p.durationMs) * 1_000_000n;
  let started = 0;
  let count = 0;
  let errors = 0;
  let firstError: string | undefined;
  const lane = async (): Promise<void> => {
    while (started < p.maxOps) {
      const s = now();
      if (s >= end || errors > 1000) return;
      started++;
      try {
        const n = await call(payload, p.timeoutMs);
        if (n !== p.size) throw new Error(`reply of ${n} bytes, want ${p.size}`);
        const e = now();
        if (s >= warmEnd && e <= end) {
          count++;
          rec.record(Number(e - s) / 1000);
        }
      } catch (err) {
        errors++;
        firstError ??= String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: p.inFlight }, lane));
  const s = rec.summary();
  rec.destroy();
  return {
    rps: (count * 1000) / p.durationMs,
    p50_us: s.p50_us,
    p99_us: s.p99_us,
    max_us: s.max_us,
    count,
    errors,
    firstError,
  };
}

serveWorker(
  {
    connectTcp: async (p: { port: number }) => {
      const sock = tcpConnect({ host: '127.0.0.1', port: p.port });
      sock.setNoDelay(true);
      await new Promise<void>((resolve, reject) => {
        sock.once('connect', resolve);
        sock.once('error', reject);
      });
      useStack(createStack(sock, false));
      return {};
    },
    connectRudp: async (p: { port: number }) => {
      const r = await dialRudp(p.port);
      closeRudp = r.close;
      useStack(createStack(r.conn, false));
      return { stack: r.stack };
    },
    connectNats: async (p: { port: number }) => {
      const c = await connect({ servers: `127.0.0.1:${p.port}`, name: 'rpc-bench-requester' });
      nc = c;
      op = async (payload, timeoutMs) =>
        (await c.request(SUBJECT, payload, { timeout: timeoutMs })).data.length;
      return {};
    },
    run: (p: RunParams) => run(p),
    stats: () => ({
      mux: stack?.mux.drops.snapshot(),
      rpc: stack?.rpc.drops.snapshot(),
    }),
  },
  {},
  async () => {
    stack?.mux.close('bench over');
    await closeRudp?.();
    await nc?.close();
  }
);
