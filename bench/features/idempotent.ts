/**
 * `make bench-idempotent`: what Send.idempotency_key costs
 * (docs/design.md, "Exactly-once publish"). Three `meshwire serve` processes on
 * loopback, each listing the two others; a subscriber on node A; a client keeping CONCURRENCY unary Sends (ack ACCEPTED, 128 B)
 * in flight through node A. Two modes in the same run, interleaved over RUNS rounds on the
 * same nodes, medians reported:
 *   plain   no key
 *   keyed   a fresh key per Send: node A claims it at its owner (about 2/3 of keys live on
 *           node B or C, one round trip before delivering and one after) and delivers once
 * The nodes run with a 10 s window (--idempotency-window-ms) and the measurement starts
 * once that long has passed since they started: an owner in its first window after
 * starting also asks the replica about every new key (docs/design.md), a start-up cost
 * this bench leaves out. Prints Sends/s and node CPU per Send (user + system of the three
 * processes, /proc) for each mode, and keyed/plain ratios. Writes nothing.
 * Flags: --runs N (default 3), --duration-ms N (default 5000), --smoke (1 round of 1 s).
 */
import { cpus, loadavg } from 'node:os';
import type { ServiceError } from '@grpc/grpc-js';
import { createClients } from '../../src/api';
import type { MeshwireClients } from '../../src/api';
import { rendezvousOwner } from '../../src/node';
import { median, sleep, stopProcess } from '../common';
import type { ServerHandle } from '../common';
import { CpuWindow } from '../common/cpu';
import { startLoopbackCluster } from './loopback-cluster';

const IDS = ['idem-a', 'idem-b', 'idem-c'];
const CONCURRENCY = 64;
const PAYLOAD = Buffer.alloc(128, 7);
const MODES = ['plain', 'keyed'] as const;
/** The nodes' idempotency window: short, so that the first window after start passes quickly. */
const WINDOW_MS = 10_000;
type Mode = (typeof MODES)[number];

interface Args {
  runs: number;
  durationMs: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { runs: 3, durationMs: 5000 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--runs') args.runs = Number(argv[++i]);
    else if (argv[i] === '--duration-ms') args.durationMs = Number(argv[++i]);
    else if (argv[i] === '--smoke') {
      args.runs = 1;
      args.durationMs = 1000;
    } else throw new Error(`unknown flag ${argv[i]}`);
  }
  return args;
}

function send(clients: MeshwireClients, key: string): Promise<void> {
  return new Promise((resolve, reject) => {
    // grpc-js generated clients expose methods by name; the shape is checked by the proto.
    const fn = (clients.messenger as unknown as Record<string, (...a: unknown[]) => void>).Send;
    fn.call(
      clients.messenger,
      { message: { topic: 'bench.idem', payload: PAYLOAD }, idempotencyKey: key },
      { deadline: Date.now() + 30_000 },
      (err: ServiceError | null) => (err ? reject(err) : resolve())
    );
  });
}

/** Sends for `durationMs` with CONCURRENCY in flight; returns Sends completed. */
async function window(
  clients: MeshwireClients,
  mode: Mode,
  tag: string,
  durationMs: number
): Promise<number> {
  const end = Date.now() + durationMs;
  let done = 0;
  let n = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < end) {
        await send(clients, mode === 'keyed' ? `${tag}-${n++}` : '');
        done++;
      }
    })
  );
  return done;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const nodes: ServerHandle[] = [];
  const clients: MeshwireClients[] = [];
  try {
    const cluster = await startLoopbackCluster(IDS, {
      extraArgs: ['--log-level', 'warn', '--idempotency-window-ms', String(WINDOW_MS)],
    });
    nodes.push(...cluster.servers);
    const startedAt = Date.now();
    const client = createClients(cluster.grpc[0]);
    clients.push(client);
    // A subscriber on node A, draining its stream.
    const sub = (
      client.messenger as unknown as Record<string, (...a: unknown[]) => NodeJS.EventEmitter>
    ).Subscribe.call(client.messenger, { topics: ['bench.>'], maxBatch: 256, bufferSize: 65536 });
    sub.on('data', () => undefined);
    sub.on('error', () => undefined);
    // Let the links come up (a keyed Send to an owner not yet connected waits for it).
    await sleep(2000);
    const sample = Array.from({ length: 3000 }, (_, i) => rendezvousOwner(`k-${i}`, IDS));
    const remote = sample.filter(o => o !== IDS[0]).length / sample.length;
    console.error(
      `bench-idempotent: ${args.runs} rounds of ${args.durationMs} ms per mode, ${CONCURRENCY} Sends in flight, ${(remote * 100).toFixed(0)}% of keys owned by node B or C; ${cpus().length} cores, load ${loadavg()[0].toFixed(2)}`
    );
    await window(client, 'plain', 'warm', 1000);
    await window(client, 'keyed', 'warm', 1000);
    // Past the owners' first window: no replica lookups in what is measured.
    await sleep(Math.max(0, startedAt + WINDOW_MS + 500 - Date.now()));
    const pids = nodes.map(n => n.child.pid as number);
    const rate: Record<Mode, number[]> = { plain: [], keyed: [] };
    const cpu: Record<Mode, number[]> = { plain: [], keyed: [] };
    for (let r = 0; r < args.runs; r++) {
      for (const mode of r % 2 === 0 ? MODES : [...MODES].reverse()) {
        const w = new CpuWindow(pids);
        const t0 = performance.now();
        w.start();
        const n = await window(client, mode, `r${r}`, args.durationMs);
        w.stop();
        const secs = (performance.now() - t0) / 1000;
        rate[mode].push(n / secs);
        cpu[mode].push(w.usPerOp(n));
        console.error(
          `  round ${r + 1} ${mode}: ${Math.round(n / secs)} Sends/s, ${w.usPerOp(n).toFixed(0)} us node CPU per Send`
        );
      }
    }
    const plainRate = median(rate.plain);
    const keyedRate = median(rate.keyed);
    const plainCpu = median(cpu.plain);
    const keyedCpu = median(cpu.keyed);
    console.log(`| mode | Sends/s (median) | node CPU per Send (us, 3 nodes) |`);
    console.log(`|---|---|---|`);
    console.log(`| plain | ${Math.round(plainRate)} | ${plainCpu.toFixed(0)} |`);
    console.log(`| keyed | ${Math.round(keyedRate)} | ${keyedCpu.toFixed(0)} |`);
    console.log(
      `keyed/plain: throughput ${(keyedRate / plainRate).toFixed(2)}x, CPU per Send ${(keyedCpu / plainCpu).toFixed(2)}x`
    );
    sub.removeAllListeners('data');
  } finally {
    for (const c of clients) c.close();
    await Promise.all(nodes.map(n => stopProcess(n.child)));
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
