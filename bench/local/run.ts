/**
 * `make bench-local`: meshwire beside its anchors (a bare grpc-js echo server and
 * nats-server with the npm `nats` client), every client and server in its own process.
 *
 *   node dist/bench/local/run.js            full run: 5 interleaved runs per figure, writes
 *                                           bench/results/local.json and docs/benchmarks.md
 *   node dist/bench/local/run.js --smoke    each scenario once for ~1 s; writes nothing,
 *                                           prints `SMOKE_RESULT {json}` last
 *   node dist/bench/local/run.js --profile  meshwire node under `node --cpu-prof` for the
 *                                           pub/sub and the request loads; prints hot spots
 *                                           (with --only: just the matching scenarios)
 * Options: --runs N, --warmup-ms N, --duration-ms N, --systems floor,nats,meshwire,
 *          --only TEXT (scenarios whose name contains TEXT), --no-write.
 */
import { parseArgs } from 'node:util';
import { loadavg } from 'node:os';
import { RunSet, roundFigure } from '../common/stats';
import { publishRun } from '../common/results';
import { GrpcFloor, Nats } from './anchors';
import { Meshwire, profileMeshwire } from './meshwire';
import { computeRatios, renderSection, RATIOS, targetMet } from './report';
import type { Scenario, System, Timing } from './scenario';
import { warmUpRound } from './scenario';
import { tuneRuntime } from '../../src/common/runtime';
import { clockTicksPerSecond, machineInfo } from '../common/cpu';
import { benchLogger } from '../common/log';

const log = benchLogger('bench-local');

interface Options {
  smoke: boolean;
  profile: boolean;
  write: boolean;
  runs: number;
  timing: Timing;
  systems: string[];
  /** Run only scenarios whose name contains this text (development). */
  only?: string;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      smoke: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      'no-write': { type: 'boolean', default: false },
      runs: { type: 'string' },
      'warmup-ms': { type: 'string' },
      'duration-ms': { type: 'string' },
      systems: { type: 'string', default: 'floor,nats,meshwire' },
      only: { type: 'string' },
    },
  });
  const smoke = values.smoke ?? false;
  const int = (v: string | undefined, dflt: number, name: string, max: number): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > max) {
      throw new Error(`--${name} ${v}: an integer from 1 to ${max} expected`);
    }
    return n;
  };
  const systems = (values.systems ?? '').split(',').filter(Boolean);
  for (const s of systems) {
    if (!['floor', 'nats', 'meshwire'].includes(s)) {
      throw new Error(`--systems: unknown system ${s} (floor, nats, meshwire)`);
    }
  }
  return {
    smoke,
    profile: values.profile ?? false,
    write: !smoke && !(values['no-write'] ?? false),
    runs: int(values.runs, smoke ? 1 : 5, 'runs', 50),
    timing: {
      warmupMs: int(values['warmup-ms'], smoke ? 250 : 1_000, 'warmup-ms', 60_000),
      durationMs: int(values['duration-ms'], smoke ? 750 : 3_000, 'duration-ms', 60_000),
    },
    systems,
    only: values.only,
  };
}

async function main(): Promise<void> {
  const opts = options();
  if (opts.profile) {
    await profileMeshwire(opts.timing, opts.only);
    return;
  }
  const systems: System[] = [];
  if (opts.systems.includes('floor')) systems.push(new GrpcFloor());
  if (opts.systems.includes('nats')) systems.push(new Nats());
  if (opts.systems.includes('meshwire')) systems.push(new Meshwire());
  const runs = new RunSet();
  const started = Date.now();
  const loadBefore = loadavg()[0]!;
  const wanted = (sc: Scenario): boolean => !opts.only || sc.name.includes(opts.only);
  // A system with no selected scenario is not started at all.
  const active = systems.filter(s => s.scenarios().some(wanted));
  try {
    for (const s of active) {
      log(`starting ${s.name}`);
      await s.start();
    }
    const scenarios = active.flatMap(s => s.scenarios()).filter(wanted);
    if (scenarios.length === 0) throw new Error(`no scenario matches --only ${opts.only}`);
    if (!opts.smoke) await warmUpRound(scenarios, opts.timing, log);
    // Interleaved: every scenario once per round, so drift hits every system alike.
    for (let round = 1; round <= opts.runs; round++) {
      for (const sc of scenarios) {
        const figures = await sc.run(opts.timing);
        for (const [k, v] of Object.entries(figures)) runs.add(k, v);
        log(
          `run ${round}/${opts.runs} ${sc.name}: ` +
            Object.entries(figures)
              .map(([k, v]) => `${k}=${roundFigure(v)}`)
              .join(' ')
        );
      }
    }
  } finally {
    for (const s of [...active].reverse()) {
      await s.stop().catch((e: unknown) => log(`stopping ${s.name}: ${String(e)}`));
    }
  }
  const figures: Record<string, number> = {};
  for (const [k, v] of Object.entries(runs.medians())) figures[k] = roundFigure(v);
  const ratios = computeRatios(figures);
  log(`done in ${Math.round((Date.now() - started) / 1000)} s`);
  for (const def of RATIOS) {
    const r = ratios[def.key];
    if (r === undefined) continue;
    const met = targetMet(def, r);
    log(
      `${def.key} = ${r.toFixed(2)}` +
        (def.target
          ? ` (target ${def.target.op} ${def.target.value}: ${met ? 'met' : 'NOT met'})`
          : '')
    );
  }
  const machine = machineInfo();
  log(`Node ${process.version} on ${machine.cpuModel}, Linux ${machine.kernel}`);
  const spread: Record<string, number[]> = {};
  for (const n of runs.names()) spread[n] = runs.runs(n).map(roundFigure);
  publishRun({
    name: 'local',
    command: 'make bench-local',
    figures,
    ratios,
    spread,
    runs: opts.runs,
    timing: opts.timing,
    smoke: opts.smoke,
    write: opts.write,
    render: renderSection,
    processes: Meshwire.transports(),
    extraMeta: {
      cpu_model: machine.cpuModel,
      kernel: machine.kernel,
      clk_tck: clockTicksPerSecond(),
    },
    log,
    notes: [
      'meshwire request p50/p99: unary Request, answered by a responder process through ' +
        'Subscribe + unary Respond. request_stream_responder p50/p99: the same unary ' +
        'Request, answered through Subscribe (max_batch 64) + one long-lived RespondStream, ' +
        'as `meshwire reply-with` does. request_rps_64: one RequestStream with 64 requests ' +
        'in flight (the requester of `meshwire bench request`, src/cli/load), answered through ' +
        'Subscribe (max_batch 64) + RespondStream. NATS: ' +
        '`nc.request` (64 concurrent for the throughput). Floor: unary echo.',
      'CPU per operation, in the windows of the sequential scenarios: ' +
        '`meshwire.node_cpu_us_per_request` is the node process with the RespondStream ' +
        'responder, `meshwire.node_cpu_us_per_request_unary_respond` with the unary ' +
        'Respond one, `grpc_floor.server_cpu_us_per_call` the bare grpc-js echo server. ' +
        'The clients and the responder are not counted.',
      "Pub/sub: every publisher is paced by a credit window fed by its subscriber's count " +
        '(65,536 messages at 128 B, 2,048 at 16 KiB), so no system drops and the figure is ' +
        'what is delivered. meshwire: SendStream with 256 (128 B) or 16 (16 KiB) messages ' +
        'per request and at most 8 unacked requests; Subscribe with max_batch 256 or 64 and ' +
        'buffer_size equal to the window. NATS: `publish` with `flush()` every 1,024 or 64 ' +
        'messages, 4 flushes outstanding. Floor: one server stream of 128 B messages.',
      `Host load average (1 min) ${loadBefore.toFixed(1)} at the start and ` +
        `${loadavg()[0]!.toFixed(1)} at the end: other work on the same 2 cores widens the ` +
        'spread; the interleaving keeps the ratios comparable.',
    ],
  });
}

// this process is a load generator too: same V8 tuning as every other bench process
tuneRuntime();
main().then(
  () => process.exit(0),
  (e: unknown) => {
    log(`FAILED: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  }
);
