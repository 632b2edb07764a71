/**
 * `make bench-telemetry`: the cost of tracing on cross-node Request. Two nodes as
 * processes (static peers on loopback), a responder on node B (Subscribe + RespondStream),
 * a client keeping `CONCURRENCY` unary Requests in flight through node A to node B. Three
 * modes, interleaved over RUNS rounds (fresh nodes each time), medians reported:
 *   off         no OTEL_* at all (the no-op path)
 *   full        OTLP/gRPC export, every trace sampled (parentbased_always_on)
 *   sampled_1   OTLP/gRPC export, 1% of traces (parentbased_traceidratio 0.01)
 * Spans go to the OTLP/gRPC receiver of the tests (test/helpers/otlp-receiver.ts) in a
 * process of its own (receiver.ts), counting only. The batch processor is sized so that nothing is dropped, so
 * "full" pays for exporting every span. Target (issue 6): full >= 80% of off throughput.
 *
 * Flags: --smoke (short windows, one round; writes nothing), --runs N, --duration-ms N,
 * --only cross|local, --modes off,full,sampled_1 (a subset, development), --profile DIR (the
 * nodes run under `node --cpu-prof`, one profile per node and mode under DIR; print hot spots
 * of node A's measured window). node_cpu_us_per_request: CPU (user + system, /proc) of both
 * node processes over the measured window per completed Request.
 * Writes bench/results/telemetry.json and the bench:telemetry section of docs/benchmarks.md.
 */
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import type {
  Client,
  ClientReadableStream,
  ClientWritableStream,
  ServiceError,
} from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import { createClients } from '../../src/api';
import type { MeshwireClients } from '../../src/api';
import type { WireDelivery } from '../../src/api/proto';
import type { ChildProcess } from 'node:child_process';
import { fork } from 'node:child_process';
import {
  LatencyRecorder,
  RunSet,
  fmt,
  freeTcpPort,
  freeUdpPort,
  markdownTable,
  repoRoot,
  rewriteDocSection,
  roundFigure,
  sleep,
  startServer,
  stopProcess,
  tcpAccepts,
  writeResultsJson,
  busyIdleMs,
  formatHotSpots,
  hotSpots,
  readNewestProfile,
} from '../common';
import { CpuWindow, machineInfo } from '../common/cpu';
import { transportFromMetrics } from '../common/proc';
import { machineAndStacks, StackLog } from '../common/results';

/** UDP driver/AEAD backend of the nodes of every round. */
const stacks = new StackLog();
import type { ServerHandle } from '../common';
import { runtimeFlags, tuneRuntime } from '../../src/common/runtime';

const MODES = ['off', 'full', 'sampled_1'] as const;
type Mode = (typeof MODES)[number];
/** cross: client -> node A -> responder on node B; local: the responder is on node A. */
const SCENARIOS = ['cross', 'local'] as const;
type Scenario = (typeof SCENARIOS)[number];
const CONCURRENCY = 32;
const PAYLOAD = Buffer.alloc(256, 7);

interface Args {
  smoke: boolean;
  scenarios: Scenario[];
  runs: number;
  durationMs: number;
  warmupMs: number;
  modes: Mode[];
  profileDir?: string;
}

function parseArgs(argv: string[]): Args {
  const smoke = argv.includes('--smoke');
  const num = (flag: string, dflt: number): number => {
    const i = argv.indexOf(flag);
    return i >= 0 ? Number(argv[i + 1]) : dflt;
  };
  const only = argv.indexOf('--only');
  const scenarios = only >= 0 ? [argv[only + 1] as Scenario] : [...SCENARIOS];
  const m = argv.indexOf('--modes');
  const modes = m >= 0 ? (argv[m + 1]!.split(',') as Mode[]) : [...MODES];
  const p = argv.indexOf('--profile');
  return {
    smoke,
    scenarios,
    modes,
    ...(p >= 0 ? { profileDir: argv[p + 1] } : {}),
    runs: num('--runs', smoke ? 1 : 3),
    durationMs: num('--duration-ms', smoke ? 1000 : 5000),
    warmupMs: smoke ? 300 : 1500,
  };
}

function tracingEnv(mode: Mode, receiver: Receiver): NodeJS.ProcessEnv {
  // A clean environment: whatever OTEL_* the caller has must not change the mode.
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OTEL_')) env[k] = v;
  if (mode === 'off') return env;
  return {
    ...env,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    OTEL_BSP_SCHEDULE_DELAY: '500',
    OTEL_BSP_MAX_QUEUE_SIZE: '65536',
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '2048',
    OTEL_TRACES_SAMPLER: mode === 'full' ? 'parentbased_always_on' : 'parentbased_traceidratio',
    ...(mode === 'sampled_1' ? { OTEL_TRACES_SAMPLER_ARG: '0.01' } : {}),
  };
}

/** The receiver process: its endpoint and how many spans it got so far. */
interface Receiver {
  endpoint: string;
  spanCount(): Promise<number>;
  close(): void;
}

async function startReceiver(): Promise<Receiver> {
  const child: ChildProcess = fork(join(__dirname, 'receiver.js'), [], {
    stdio: 'inherit',
    execArgv: runtimeFlags(),
  });
  const endpoint = await new Promise<string>((resolve, reject) => {
    child.once('message', (m: { endpoint: string }) => resolve(m.endpoint));
    child.once('exit', code => reject(new Error(`OTLP receiver exited with ${code}`)));
  });
  return {
    endpoint,
    spanCount: () =>
      new Promise<number>(resolve => {
        child.once('message', (m: { count: number }) => resolve(m.count));
        child.send({ type: 'count' });
      }),
    close: () => child.disconnect(),
  };
}

interface Pair {
  a: ServerHandle;
  b: ServerHandle;
  /** The nodes' Prometheus ports (A, B). */
  metricsPorts: [number, number];
  ca: MeshwireClients;
  cb: MeshwireClients;
}

/**
 * startPair, again with fresh ports when a node fails to start: a port found free a moment
 * ago can be taken meanwhile (EADDRINUSE), which says nothing about tracing.
 */
async function startPairRetrying(
  mode: Mode,
  receiver: Receiver,
  execArgv: (id: string) => string[]
): Promise<Pair> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startPair(mode, receiver, execArgv);
    } catch (err) {
      if (attempt >= 3) throw err;
      console.error(
        `${mode}: nodes did not start (${(err as Error).message.split('\n')[0]}); retrying`
      );
    }
  }
}

async function startPair(
  mode: Mode,
  receiver: Receiver,
  execArgv: (id: string) => string[]
): Promise<Pair> {
  const cli = join(repoRoot(), 'dist', 'src', 'cli', 'main.js');
  const [ga, gb, ma, mb] = [
    await freeTcpPort(),
    await freeTcpPort(),
    await freeTcpPort(),
    await freeTcpPort(),
  ];
  const [ua, ub] = [await freeUdpPort(), await freeUdpPort()];
  const node = (id: string, g: number, m: number, u: number, peer: string): Promise<ServerHandle> =>
    startServer({
      name: `${mode}:${id}`,
      command: process.execPath,
      args: [
        ...execArgv(id),
        cli,
        'serve',
        '--node-id',
        id,
        '--grpc-listen',
        `127.0.0.1:${g}`,
        '--metrics-listen',
        `127.0.0.1:${m}`,
        '--peer-listen',
        `127.0.0.1:${u}`,
        '--peers',
        peer,
        '--log-level',
        'warn',
      ],
      env: { ...tracingEnv(mode, receiver), OTEL_SERVICE_NAME: `bench-${id}` },
      ready: () => tcpAccepts('127.0.0.1', g),
    });
  const started = await Promise.allSettled([
    node('node-a', ga, ma, ua, `node-b=127.0.0.1:${ub}`),
    node('node-b', gb, mb, ub, `node-a=127.0.0.1:${ua}`),
  ]);
  const failed = started.find(r => r.status === 'rejected');
  if (failed) {
    // Do not leave the other node behind.
    await Promise.all(
      started.map(r => (r.status === 'fulfilled' ? stopProcess(r.value.child) : undefined))
    );
    throw (failed as PromiseRejectedResult).reason;
  }
  const [a, b] = started.map(r => (r as PromiseFulfilledResult<ServerHandle>).value);
  return {
    a,
    b,
    metricsPorts: [ma, mb],
    ca: createClients(`127.0.0.1:${ga}`),
    cb: createClients(`127.0.0.1:${gb}`),
  };
}

type Fn = (...a: unknown[]) => unknown;
const method = (c: Client, name: string): Fn =>
  ((c as unknown as Record<string, Fn>)[name] as Fn).bind(c);

/** Subscribe on B and answer every request through one RespondStream. */
function startResponder(cb: MeshwireClients): { stop(): void } {
  const sub = method(
    cb.messenger,
    'Subscribe'
  )({
    topics: ['bench.echo'],
    maxBatch: 64,
    bufferSize: 4096,
  }) as ClientReadableStream<{ deliveries: WireDelivery[] }>;
  const out = method(
    cb.messenger,
    'RespondStream'
  )(() => undefined) as ClientWritableStream<unknown>;
  sub.on('data', batch => {
    for (const d of batch.deliveries) {
      out.write({
        replyTo: d.replyTo,
        message: { payload: d.message.payload, headers: d.message.headers },
      });
    }
  });
  sub.on('error', () => undefined);
  out.on('error', () => undefined);
  return {
    stop: () => {
      sub.cancel();
      out.end();
    },
  };
}

function request(ca: MeshwireClients, scenario: Scenario): Promise<unknown> {
  return new Promise((resolve, reject) =>
    method(ca.messenger, 'Request')(
      {
        target: { peerId: scenario === 'cross' ? 'node-b' : 'node-a' },
        message: { topic: 'bench.echo', payload: PAYLOAD, headers: {} },
        timeoutMs: 5000,
      },
      new Metadata(),
      { deadline: Date.now() + 10_000 },
      (err: ServiceError | null, res: unknown) => (err ? reject(err) : resolve(res))
    )
  );
}

interface RunResult {
  rate: number;
  p50_us: number;
  p99_us: number;
  errors: number;
  /** Requests completed in all (warm-up included), to relate the span count to. */
  total: number;
  /** CPU of the node processes per Request in the measured window (us). */
  cpu_us: number;
}

/** CONCURRENCY lanes of Requests; throughput and latency inside the window. */
async function load(
  ca: MeshwireClients,
  scenario: Scenario,
  args: Args,
  cpu: CpuWindow
): Promise<RunResult> {
  const rec = new LatencyRecorder();
  let measuring = false;
  let stopped = false;
  let count = 0;
  let total = 0;
  let errors = 0;
  let t0 = 0n;
  let t1 = 0n;
  const maxOps = 2_000_000;
  let started = 0;
  const warm = setTimeout(() => {
    measuring = true;
    t0 = process.hrtime.bigint();
    cpu.start();
  }, args.warmupMs);
  const stop = setTimeout(() => {
    t1 = process.hrtime.bigint();
    cpu.stop();
    measuring = false;
    stopped = true;
  }, args.warmupMs + args.durationMs);
  const lane = async (): Promise<void> => {
    while (!stopped && started++ < maxOps) {
      const s = process.hrtime.bigint();
      try {
        await request(ca, scenario);
        total++;
        if (measuring) {
          count++;
          rec.recordSince(s);
        }
      } catch {
        errors++;
        if (errors > 1000) stopped = true;
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  clearTimeout(warm);
  clearTimeout(stop);
  if (t1 === 0n) t1 = process.hrtime.bigint();
  const ms = Number(t1 - t0) / 1e6;
  const sum = rec.summary();
  rec.destroy();
  return {
    rate: ms > 0 ? (count * 1000) / ms : 0,
    p50_us: sum.p50_us,
    p99_us: sum.p99_us,
    errors,
    total,
    cpu_us: cpu.usPerOp(count),
  };
}

async function runMode(
  scenario: Scenario,
  mode: Mode,
  receiver: Receiver,
  args: Args
): Promise<RunResult & { spans: number }> {
  const stamp = Date.now();
  const profDir = (id: string): string =>
    join(args.profileDir ?? '', `${scenario}-${mode}-${stamp}-${id}`);
  const execArgv = (id: string): string[] =>
    args.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir(id)}`] : [];
  const dirA = profDir('node-a');
  // The profile starts about when the process does: window offsets count from here.
  const spawned = Date.now();
  const pair = await startPairRetrying(mode, receiver, execArgv);
  // what each node says it runs on (reported, not assumed): its start-up line is hidden
  // by --log-level warn, so its Prometheus endpoint
  stacks.note('node A', pair.a.transport() ?? (await transportFromMetrics(pair.metricsPorts[0])));
  stacks.note('node B', pair.b.transport() ?? (await transportFromMetrics(pair.metricsPorts[1])));
  let window = { fromMs: 0, toMs: 0 };
  const responder = startResponder(scenario === 'cross' ? pair.cb : pair.ca);
  try {
    // The first request waits for the connection between the nodes and the subscription.
    for (let i = 0; ; i++) {
      try {
        await request(pair.ca, scenario);
        break;
      } catch (err) {
        if (i > 200) throw err;
        await sleep(25);
      }
    }
    const before = await receiver.spanCount();
    const cpu = new CpuWindow([pair.a.child.pid!, pair.b.child.pid!]);
    const from = Date.now() - spawned + args.warmupMs;
    const r = await load(pair.ca, scenario, args, cpu);
    window = { fromMs: from, toMs: from + args.durationMs };
    await sleep(mode === 'off' ? 0 : 1200); // let the last batches arrive
    return { ...r, spans: (await receiver.spanCount()) - before };
  } finally {
    responder.stop();
    pair.ca.close();
    pair.cb.close();
    await Promise.all([stopProcess(pair.a.child), stopProcess(pair.b.child)]);
    if (args.profileDir) {
      const prof = readNewestProfile(dirA);
      const b = busyIdleMs(prof, window);
      process.stdout.write(
        `node A (${scenario} ${mode}): busy ${b.busyMs} ms, idle ${b.idleMs} ms in ${window.fromMs}-${window.toMs} ms (${dirA})\n` +
          `${formatHotSpots(hotSpots(prof, repoRoot(), 25, window))}\n`
      );
    }
  }
}

/** A warning when other work shared the machine (the figures are then not representative). */
function busyNote(): string {
  const load = loadavg()[1]!;
  const cores = cpus().length;
  if (load <= cores * 1.5) return '';
  return `**The machine was oversubscribed** (5-minute load average ${load.toFixed(1)} on ${cores} cores, other builds and benchmarks running): absolute rates are far below a quiet run and the ratios are noisy; rerun \`make bench-telemetry\` on a quiet machine before drawing conclusions.\n`;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const receiver = await startReceiver();
  const runs = new RunSet();
  try {
    for (let round = 0; round < args.runs; round++) {
      for (const scenario of args.scenarios) {
        for (const mode of args.modes) {
          const r = await runMode(scenario, mode, receiver, args);
          process.stdout.write(
            `round ${round + 1} ${scenario.padEnd(5)} ${mode.padEnd(9)} ${fmt(r.rate)} req/s  p50 ${fmt(r.p50_us)} us  p99 ${fmt(r.p99_us)} us  node CPU ${fmt(r.cpu_us)} us/req  errors ${r.errors}  spans ${r.spans}\n`
          );
          const key = `${scenario}.${mode}`;
          runs.add(`${key}.request_rate`, r.rate);
          runs.add(`${key}.request_p50_us`, r.p50_us);
          runs.add(`${key}.request_p99_us`, r.p99_us);
          runs.add(`${key}.errors`, r.errors);
          runs.add(`${key}.node_cpu_us_per_request`, r.cpu_us);
          runs.add(`${key}.spans_per_request`, r.total > 0 ? r.spans / r.total : 0);
        }
      }
    }
  } finally {
    receiver.close();
  }
  const m = runs.medians();
  const figures: Record<string, number> = {};
  for (const [k, v] of Object.entries(m)) figures[`telemetry.${k}`] = roundFigure(v);
  const ratios: Record<string, number> = {};
  for (const sc of args.scenarios) {
    for (const mode of ['full', 'sampled_1'] as const) {
      ratios[`telemetry.${sc}.${mode}_vs_off.throughput`] = roundFigure(
        m[`${sc}.${mode}.request_rate`]! / m[`${sc}.off.request_rate`]!
      );
      ratios[`telemetry.${sc}.${mode}_vs_off.p99`] = roundFigure(
        m[`${sc}.${mode}.request_p99_us`]! / m[`${sc}.off.request_p99_us`]!
      );
    }
  }
  process.stderr.write(
    `UDP driver/AEAD backend by node: ${JSON.stringify(stacks.list())}; machine ${JSON.stringify(machineInfo())}\n`
  );
  process.stdout.write(`${JSON.stringify({ figures, ratios }, null, 2)}\n`);
  if (args.smoke) return;
  const root = repoRoot();
  writeResultsJson(join(root, 'bench', 'results', 'telemetry.json'), {
    figures,
    ratios,
    meta: {
      date: new Date().toISOString(),
      command: 'make bench-telemetry',
      runs: args.runs,
      duration_ms: args.durationMs,
      concurrency: CONCURRENCY,
      payload_bytes: PAYLOAD.length,
      machine: machineInfo(),
      processes: stacks.list(),
      load_average: loadavg().map(x => Math.round(x * 10) / 10),
    },
  });
  const label: Record<Mode, string> = {
    off: 'tracing off (no OTEL_*)',
    full: 'OTLP export, 100% sampled',
    sampled_1: 'OTLP export, 1% sampled',
  };
  const where: Record<Scenario, string> = {
    cross: 'cross-node (A -> B)',
    local: 'one node (A -> A)',
  };
  const table = markdownTable(
    [
      'Request',
      'tracing',
      'Request/s',
      'vs off',
      'node CPU µs/Request',
      'p50 µs',
      'p99 µs',
      'spans per request',
    ],
    args.scenarios.flatMap(sc =>
      MODES.map(mode => [
        where[sc],
        label[mode],
        fmt(m[`${sc}.${mode}.request_rate`]),
        fmt(m[`${sc}.${mode}.request_rate`]! / m[`${sc}.off.request_rate`]!),
        fmt(m[`${sc}.${mode}.node_cpu_us_per_request`]),
        fmt(m[`${sc}.${mode}.request_p50_us`]),
        fmt(m[`${sc}.${mode}.request_p99_us`]),
        fmt(m[`${sc}.${mode}.spans_per_request`]),
      ])
    )
  );
  const verdict = args.scenarios
    .map(sc => {
      const r = ratios[`telemetry.${sc}.full_vs_off.throughput`]!;
      const r1 = ratios[`telemetry.${sc}.sampled_1_vs_off.throughput`]!;
      return `${where[sc]}: full ${fmt(r)} (${r >= 0.8 ? 'met' : 'NOT met'}), 1% ${fmt(r1)} (${r1 >= 0.95 ? 'met' : 'NOT met'})`;
    })
    .join('; ');
  rewriteDocSection(
    join(root, 'docs', 'benchmarks.md'),
    'telemetry',
    [
      `Request with a responder on node B (cross-node: client -> node A -> node B -> back) or on node A itself, ${CONCURRENCY} in flight, ${PAYLOAD.length}-byte payload, two node processes on loopback and the test OTLP/gRPC receiver (counting spans) on the same 2-core machine; median of ${args.runs} interleaved rounds of ${args.durationMs / 1000} s, fresh nodes each. \`make bench-telemetry\`, ${new Date().toISOString().slice(0, 16)} UTC, load average at the end ${loadavg()
        .map(x => x.toFixed(1))
        .join(' ')}.`,
      machineAndStacks({ machine: machineInfo(), processes: stacks.list() }),
      '',
      table,
      '',
      busyNote(),
      `Targets (issue 16): full tracing costs at most 20% of throughput (ratio >= 0.8), 1% sampling at most 5% (>= 0.95). ${verdict}. Spans per request: what the receiver got per measured request (the Request server span, which is also the message's producer span, then process and respond; the responder's RespondStream call is one span for all its replies).`,
    ].join('\n')
  );
}

// this process is a load generator too: same V8 tuning as every other bench process
tuneRuntime();
main().catch(err => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
