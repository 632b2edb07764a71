/**
 * `make bench-request-many`: the cost of RequestMany (scatter-gather) on a 3-node cluster
 * on loopback, side by side with plain Request on the same cluster as the anchor.
 *
 *   node dist/bench/features/request-many.js [--duration-ms N] [--concurrency N] [--runs N]
 *
 * Three `meshwire serve` processes with static peers; one responder on each node (a
 * Subscribe answered through a RespondStream on the same node), all in this process.
 * Clients call node A: RequestMany (every responder: 3 replies per call, ending when all
 * answered) and plain Request with the same number of calls in flight, by interest (node
 * A's own responder answers: no peer hop) and targeted at node B (one peer hop, as 2 of
 * RequestMany's 3 replies take). Prints replies/s and the nodes' CPU per reply (/proc, all
 * three nodes) of each, and RequestMany / Request as ratios. Runs alternate (Request, RequestMany, ...); the
 * median of the runs is printed. Writes nothing.
 */
import { parseArgs } from 'node:util';
import type { ClientReadableStream, ClientWritableStream, ServiceError } from '@grpc/grpc-js';
import type { DeliveryBatch, MeshwireClients } from '../../src/api';
import { createClients } from '../../src/api';
import { CpuWindow, machineLine } from '../common/cpu';
import { stopProcess } from '../common/proc';
import { median } from '../common/stats';
import { startLoopbackCluster } from './loopback-cluster';

const IDS = ['many-a', 'many-b', 'many-c'];
const TOPIC = 'bench.many';

interface Figures {
  replies: number;
  calls: number;
  seconds: number;
  cpuUsPerReply: number;
  errors: number;
}

function options(): { durationMs: number; concurrency: number; runs: number } {
  const { values } = parseArgs({
    options: {
      'duration-ms': { type: 'string', default: '5000' },
      concurrency: { type: 'string', default: '32' },
      runs: { type: 'string', default: '3' },
    },
  });
  return {
    durationMs: Number(values['duration-ms']),
    concurrency: Number(values.concurrency),
    runs: Number(values.runs),
  };
}

type Callable = Record<string, (...a: unknown[]) => unknown>;

function unary<T>(
  clients: MeshwireClients,
  client: 'messenger' | 'peers',
  method: string,
  req: unknown
): Promise<T> {
  const c = clients[client] as unknown as Callable;
  return new Promise((resolve, reject) =>
    c[method].call(
      clients[client],
      req,
      { deadline: Date.now() + 10_000 },
      (err: ServiceError | null, res: T) => (err ? reject(err) : resolve(res))
    )
  );
}

async function waitConnected(clients: MeshwireClients, others: string[]): Promise<void> {
  const until = Date.now() + 60_000;
  for (;;) {
    const list = await unary<{ peers: Array<{ id: string; state: string }> }>(
      clients,
      'peers',
      'ListPeers',
      {}
    );
    if (others.every(id => list.peers.some(p => p.id === id && p.state === 'connected'))) return;
    if (Date.now() > until) throw new Error(`peers not connected: ${JSON.stringify(list.peers)}`);
    await new Promise(r => setTimeout(r, 100));
  }
}

/** A responder on one node: Subscribe, answers through one RespondStream there. */
async function startResponder(clients: MeshwireClients): Promise<() => void> {
  const m = clients.messenger as unknown as Callable;
  const respond = m.RespondStream.call(
    clients.messenger,
    () => undefined
  ) as ClientWritableStream<unknown>;
  respond.on('error', () => undefined);
  const sub = m.Subscribe.call(clients.messenger, {
    topics: [TOPIC],
    maxBatch: 64,
    bufferSize: 8192,
  }) as ClientReadableStream<DeliveryBatch>;
  const payload = Buffer.alloc(128, 1);
  sub.on('data', (batch: DeliveryBatch) => {
    for (const d of batch.deliveries) respond.write({ replyTo: d.replyTo, message: { payload } });
  });
  sub.on('error', () => undefined);
  await new Promise<void>(resolve => sub.once('metadata', () => resolve()));
  return () => {
    sub.cancel();
    respond.end();
  };
}

/** `concurrency` loops of `call` on node A for `durationMs`; replies per call from `call`. */
async function drive(
  pids: number[],
  durationMs: number,
  concurrency: number,
  call: () => Promise<number>
): Promise<Figures> {
  let replies = 0;
  let calls = 0;
  let errors = 0;
  const cpu = new CpuWindow(pids);
  const start = performance.now();
  cpu.start();
  const end = start + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        try {
          // not `replies += await call()`: that reads `replies` before the await
          const n = await call();
          replies += n;
          calls++;
        } catch {
          errors++;
        }
      }
    })
  );
  cpu.stop();
  const seconds = (performance.now() - start) / 1000;
  return { replies, calls, seconds, cpuUsPerReply: cpu.usPerOp(replies), errors };
}

async function main(): Promise<void> {
  const opts = options();
  const { servers, grpc } = await startLoopbackCluster(IDS, {
    env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: '' },
  });
  const children = servers.map(s => s.child);
  const clients = grpc.map(a => createClients(a));
  const stops: Array<() => void> = [];
  try {
    for (let i = 0; i < IDS.length; i++)
      await waitConnected(
        clients[i],
        IDS.filter((_, j) => j !== i)
      );
    for (const c of clients) stops.push(await startResponder(c));
    const a = clients[0];
    const m = a.messenger as unknown as Callable;
    const message = { topic: TOPIC, payload: Buffer.alloc(128, 2) };
    const requestRemote = (): Promise<number> =>
      unary(a, 'messenger', 'Request', {
        message,
        timeoutMs: 5000,
        target: { peerId: IDS[1] },
      }).then(() => 1);
    const request = (): Promise<number> =>
      unary(a, 'messenger', 'Request', { message, timeoutMs: 5000 }).then(() => 1);
    const requestMany = (): Promise<number> =>
      new Promise((resolve, reject) => {
        let n = 0;
        const s = m.RequestMany.call(
          a.messenger,
          { message, timeoutMs: 5000 },
          { deadline: Date.now() + 10_000 }
        ) as ClientReadableStream<unknown>;
        s.on('data', () => n++);
        s.on('error', reject);
        s.on('end', () => (n === IDS.length ? resolve(n) : reject(new Error(`${n} replies`))));
      });
    const pids = children.map(c => c.pid as number);
    // Warm-up: both paths, JIT and links.
    await drive(pids, 1000, opts.concurrency, request);
    await drive(pids, 1000, opts.concurrency, requestMany);
    await drive(pids, 1000, opts.concurrency, requestRemote);
    const plain: Figures[] = [];
    const remote: Figures[] = [];
    const many: Figures[] = [];
    for (let r = 0; r < opts.runs; r++) {
      plain.push(await drive(pids, opts.durationMs, opts.concurrency, request));
      remote.push(await drive(pids, opts.durationMs, opts.concurrency, requestRemote));
      many.push(await drive(pids, opts.durationMs, opts.concurrency, requestMany));
    }
    const rate = (f: Figures): number => f.replies / f.seconds;
    const rps = {
      plain: median(plain.map(rate)),
      remote: median(remote.map(rate)),
      many: median(many.map(rate)),
    };
    const cpu = {
      plain: median(plain.map(f => f.cpuUsPerReply)),
      many: median(many.map(f => f.cpuUsPerReply)),
    };
    const callsPerS = median(many.map(f => f.calls / f.seconds));
    const remoteCpu = median(remote.map(f => f.cpuUsPerReply));
    const errors = [...plain, ...remote, ...many].reduce((s, f) => s + f.errors, 0);
    const line = (name: string, r: number, c: number): string =>
      `${name.padEnd(28)} ${Math.round(r).toLocaleString('en-US').padStart(9)} replies/s  ${c.toFixed(0).padStart(5)} us node CPU/reply`;
    console.log(
      `bench-request-many: 3 nodes on loopback, ${opts.concurrency} calls in flight on node A, 128 B, ${opts.runs} runs of ${opts.durationMs} ms (median)`
    );
    console.log(`machine: ${machineLine()}`);
    console.log(line('Request (anchor, 1 reply)', rps.plain, cpu.plain));
    console.log(line('Request to node B (1 hop)', rps.remote, remoteCpu));
    console.log(line('RequestMany (3 replies)', rps.many, cpu.many));
    console.log(
      `RequestMany calls/s: ${Math.round(callsPerS).toLocaleString('en-US')}; errors: ${errors}`
    );
    console.log(
      `ratio RequestMany / Request: replies/s ${(rps.many / rps.plain).toFixed(2)}x, node CPU per reply ${(cpu.many / cpu.plain).toFixed(2)}x`
    );
    console.log(
      `ratio RequestMany / Request to node B: replies/s ${(rps.many / rps.remote).toFixed(2)}x, node CPU per reply ${(cpu.many / remoteCpu).toFixed(2)}x`
    );
  } finally {
    for (const stop of stops) stop();
    for (const c of clients) c.close();
    await Promise.all(children.map(c => stopProcess(c)));
  }
}

main().catch(err => {
  console.error(err);
  process.exit(1);
});
