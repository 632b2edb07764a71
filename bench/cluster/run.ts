/**
 * `make bench-cluster`: two meshwire nodes (client -> node A -> node B -> subscriber or
 * responder on B) beside one meshwire node and NATS, every node, server and client in its
 * own process; then the two nodes and NATS again at 1% random packet loss.
 *
 *   node dist/bench/cluster/run.js          full run: 5 interleaved runs per figure, then the
 *                                           lossy runs in a network namespace (`mwbc<pid>`,
 *                                           needs root, nft, ethtool); writes
 *                                           bench/results/cluster.json and docs/benchmarks.md
 *   node dist/bench/cluster/run.js --smoke  each scenario once, short; no namespace, nothing
 *                                           written; prints `SMOKE_RESULT {json}` last
 *   node dist/bench/cluster/run.js --profile  the two nodes and their clients under
 *                                           `node --cpu-prof`, cross-node pub/sub at 128 B
 *                                           only; prints each process's hot spots, writes
 *                                           nothing
 * Options: --runs N, --warmup-ms N, --duration-ms N, --no-loss, --no-write,
 *          --only TEXT (scenarios whose name contains TEXT, e.g. `cluster.request`; development).
 * Internal: --phase loss --out FILE runs the lossy scenarios (started inside the namespace).
 *
 * Scenarios (128-byte payloads): sequential Request (p50/p99), 64 requests in flight on a
 * RequestStream, pub/sub by SendStream measured at the subscriber. They are bench-local's
 * (bench/local): the cluster is bench-local's meshwire system with two nodes.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { RunSet, roundFigure } from '../common/stats';
import { publishRun } from '../common/results';
import { Nats } from '../local/anchors';
import { Meshwire } from '../local/meshwire';
import type { MeshwireInit } from '../local/meshwire';
import { busyIdleMs, formatHotSpots, hotSpots, readNewestProfile } from '../common/cpuprofile';
import { repoRoot } from '../common/results';
import type { Scenario, System, Timing } from '../local/scenario';
import { warmUpRound } from '../local/scenario';
import {
  createNamespace,
  deleteNamespace,
  installLossRules,
  lossUnavailable,
  readCounters,
} from './netns';
import { COMPARISONS, computeComparisons, formatTarget, renderSection, targetMet } from './report';
import { tuneRuntime } from '../../src/common/runtime';
import { benchLogger } from '../common/log';

const LOSS_PER_MILLE = 10;
const LOSS_PREFIX = 'loss1.';
/** Scenarios of bench-local's systems that this benchmark runs (by name suffix). */
const WANTED = ['.request_latency', '.request_rps_64', '.pubsub_mps_128'];
/** Upper bound of the lossy phase, start-up and shutdown included. */
const LOSS_PHASE_MAX_MS = 5 * 60_000;

const log = benchLogger('bench-cluster');

interface Options {
  smoke: boolean;
  write: boolean;
  loss: boolean;
  runs: number;
  timing: Timing;
  phase: 'main' | 'loss';
  out?: string;
  only?: string;
  profile: boolean;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      smoke: { type: 'boolean', default: false },
      'no-write': { type: 'boolean', default: false },
      'no-loss': { type: 'boolean', default: false },
      runs: { type: 'string' },
      'warmup-ms': { type: 'string' },
      'duration-ms': { type: 'string' },
      phase: { type: 'string', default: 'main' },
      out: { type: 'string' },
      only: { type: 'string' },
      profile: { type: 'boolean', default: false },
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
  if (values.phase !== 'main' && values.phase !== 'loss') {
    throw new Error(`--phase ${values.phase}: main or loss expected`);
  }
  if (values.phase === 'loss' && !values.out) throw new Error('--phase loss needs --out FILE');
  return {
    smoke,
    write: !smoke && !(values['no-write'] ?? false),
    loss: !smoke && !(values['no-loss'] ?? false),
    runs: int(values.runs, smoke ? 1 : 5, 'runs', 50),
    timing: {
      warmupMs: int(values['warmup-ms'], smoke ? 200 : 500, 'warmup-ms', 60_000),
      durationMs: int(values['duration-ms'], smoke ? 500 : 2_000, 'duration-ms', 60_000),
    },
    phase: values.phase,
    out: values.out,
    only: values.only,
    profile: values.profile ?? false,
  };
}

/** node-a and node-b; every request and publish goes to node-b. */
function twoNodes(init: Omit<MeshwireInit, 'crossNode'> = {}): Meshwire {
  return new Meshwire({
    ...init,
    crossNode: { prefix: 'cluster', target: { peerId: 'node-b' } },
  });
}

/**
 * Cross-node pub/sub at 128 B with node A, node B, the publisher and the subscriber under
 * `node --cpu-prof`: busy time and hot spots (self time) of each over the measured runs.
 */
async function profileCluster(opts: Options): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'meshwire-cluster-prof-'));
  const prof = (sub: string): string[] => ['--cpu-prof', `--cpu-prof-dir=${join(dir, sub)}`];
  const m = twoNodes({ execArgv: prof, clientExecArgv: prof });
  const spawned = Date.now();
  await m.start();
  const scenario = m.pubsubScenarios().find(sc => sc.name.endsWith('.pubsub_mps_128'))!;
  await scenario.run(opts.timing); // warm-up, not counted
  const loadFrom = Date.now() - spawned;
  let loadTo = loadFrom;
  try {
    for (let round = 1; round <= opts.runs; round++) {
      log(`profile run ${round}/${opts.runs}: ${JSON.stringify(await scenario.run(opts.timing))}`);
    }
    loadTo = Date.now() - spawned;
  } finally {
    await m.stop();
  }
  const window = { fromMs: loadFrom, toMs: loadTo };
  for (const sub of ['node-a', 'node-b', 'meshwire-publisher', 'meshwire-subscriber']) {
    const p = readNewestProfile(join(dir, sub));
    const b = busyIdleMs(p, window);
    console.log(`\n${sub}: busy ${b.busyMs} ms, idle ${b.idleMs} ms (${join(dir, sub)})`);
    console.log(formatHotSpots(hotSpots(p, repoRoot(), sub.startsWith('node') ? 40 : 10, window)));
  }
}

/**
 * Starts the systems, runs every wanted scenario once per round (interleaved, so drift hits
 * every system alike), stops the systems whatever happens. `beforeRounds` runs once all are
 * up (the loss phase installs its rules there).
 */
async function runRounds(
  systems: System[],
  opts: Options,
  runs: RunSet,
  beforeRounds: () => void = () => undefined
): Promise<void> {
  const wanted = (sc: Scenario): boolean =>
    WANTED.some(w => sc.name.endsWith(w)) && (!opts.only || sc.name.includes(opts.only));
  // A system with no selected scenario is not started at all.
  systems = systems.filter(s => s.scenarios().some(wanted));
  if (systems.length === 0) throw new Error(`no scenario matches --only ${opts.only}`);
  try {
    // Side by side: start-up is mostly waiting (processes loading), and slow on a busy host.
    log(`starting ${systems.map(s => s.name).join(', ')}`);
    const starts = await Promise.allSettled(systems.map(s => s.start()));
    for (const r of starts) if (r.status === 'rejected') throw r.reason;
    beforeRounds();
    const scenarios: Scenario[] = systems.flatMap(s => s.scenarios().filter(wanted));
    if (!opts.smoke) await warmUpRound(scenarios, opts.timing, log);
    for (let round = 1; round <= opts.runs; round++) {
      for (const sc of scenarios) {
        const figures = await sc.run(opts.timing);
        for (const [k, v] of Object.entries(figures)) runs.add(k, v);
        log(
          `${opts.phase === 'loss' ? '1% loss ' : ''}run ${round}/${opts.runs} ${sc.name}: ` +
            Object.entries(figures)
              .map(([k, v]) => `${k}=${roundFigure(v)}`)
              .join(' ')
        );
      }
    }
  } finally {
    for (const s of [...systems].reverse()) {
      await s.stop().catch((e: unknown) => log(`stopping ${s.name}: ${String(e)}`));
    }
  }
}

interface LossPhaseOutput {
  runs: Record<string, number[]>;
  counters: Record<string, number>;
  /** The lossy phase's nodes: UDP driver/AEAD backend from their start-up lines. */
  transports: Record<string, string>;
}

/** Inside the namespace: NATS and the two nodes, rules installed once both are up. */
async function lossPhase(opts: Options): Promise<void> {
  const nats = new Nats();
  const cluster = twoNodes();
  const runs = new RunSet();
  await runRounds([nats, cluster], opts, runs, () => {
    installLossRules({ udpPeerPorts: cluster.peerPorts, natsPort: nats.port }, LOSS_PER_MILLE);
    log(
      `loss rules installed: ${LOSS_PER_MILLE / 10}% of UDP between ports ` +
        `${cluster.peerPorts.join(', ')} and of TCP to and from ${nats.port}`
    );
  });
  const out: LossPhaseOutput = {
    runs: {},
    counters: readCounters(),
    transports: Meshwire.transports(),
  };
  for (const n of runs.names()) out.runs[n] = [...runs.runs(n)];
  writeFileSync(opts.out!, JSON.stringify(out));
}

/** What to undo on SIGINT/SIGTERM before exiting (servers die by startServer's exit hook). */
const onInterrupt = new Set<() => void>();

function exitOnSignals(): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      for (const f of onInterrupt) f();
      log(`${sig}: stopped`);
      process.exit(130);
    });
  }
}

/** Runs this script with `--phase loss` inside a fresh lossy namespace; merges its runs. */
async function runLossInNamespace(opts: Options, runs: RunSet): Promise<Record<string, number>> {
  const ns = `mwbc${process.pid}`;
  const out = join(tmpdir(), `${ns}.json`);
  const cleanup = (): void => {
    const err = deleteNamespace(ns);
    if (err) log(err);
  };
  // A signal must not leave the namespace (and what runs in it) behind.
  const onSignal = (): void => {
    cleanup();
    log(`namespace ${ns} deleted`);
  };
  onInterrupt.add(onSignal);
  try {
    createNamespace(ns);
    log(`namespace ${ns}: lo MTU 1500, TSO/GSO/GRO off`);
    await new Promise<void>((resolve, reject) => {
      const child = spawn(
        'ip',
        [
          'netns',
          'exec',
          ns,
          process.execPath,
          __filename,
          '--phase',
          'loss',
          '--out',
          out,
          '--runs',
          String(opts.runs),
          '--warmup-ms',
          String(opts.timing.warmupMs),
          '--duration-ms',
          String(opts.timing.durationMs),
          ...(opts.only ? ['--only', opts.only] : []),
        ],
        { stdio: 'inherit', env: process.env }
      );
      const timer = setTimeout(() => {
        log(`lossy phase still running after ${LOSS_PHASE_MAX_MS / 1000} s: killing it`);
        child.kill('SIGKILL');
      }, LOSS_PHASE_MAX_MS);
      child.on('error', reject);
      child.on('exit', code => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new Error(`lossy phase exited with code ${code}`));
      });
    });
    const result = JSON.parse(readFileSync(out, 'utf8')) as LossPhaseOutput;
    for (const [name, values] of Object.entries(result.runs)) {
      for (const v of values) runs.add(LOSS_PREFIX + name, v);
    }
    for (const [name, stack] of Object.entries(result.transports ?? {})) {
      lossTransports[`${LOSS_PREFIX}${name}`] = stack;
    }
    log(
      `packets dropped / seen: meshwire UDP ` +
        `${share(result.counters.meshwire_dropped, result.counters.meshwire_seen)}, NATS TCP ` +
        share(result.counters.nats_dropped, result.counters.nats_seen)
    );
    return result.counters;
  } finally {
    rmSync(out, { force: true });
    cleanup();
    onInterrupt.delete(onSignal);
  }
}

/** The lossy phase's nodes (`loss1.cluster node-a`): UDP driver/AEAD backend. */
const lossTransports: Record<string, string> = {};

/** `12,345 of 1,234,567 (1.00%)`. */
function share(dropped: number | undefined, seen: number | undefined): string {
  if (dropped === undefined || seen === undefined || seen === 0) return 'n/a';
  return `${dropped.toLocaleString('en-US')} of ${seen.toLocaleString('en-US')} (${(
    (100 * dropped) /
    seen
  ).toFixed(2)}%)`;
}

async function main(): Promise<void> {
  const opts = options();
  exitOnSignals();
  if (opts.phase === 'loss') {
    await lossPhase(opts);
    return;
  }
  if (opts.profile) {
    await profileCluster(opts);
    return;
  }
  const started = Date.now();
  const loadBefore = loadavg()[0]!;
  const runs = new RunSet();
  await runRounds([new Meshwire(), new Nats(), twoNodes()], opts, runs);
  let counters: Record<string, number> | undefined;
  let lossNote: string;
  if (opts.loss) {
    // Whatever goes wrong with the lossy part, the loss-free figures are still reported.
    let problem = lossUnavailable();
    if (!problem) {
      try {
        counters = await runLossInNamespace(opts, runs);
      } catch (e) {
        problem = `failed: ${e instanceof Error ? e.message : String(e)}`;
      }
    }
    if (problem) log(`lossy runs ${problem}`);
    lossNote =
      counters === undefined
        ? `No \`loss1.*\` figures: the lossy runs could not be made (${problem}).`
        : `Loss: nftables in network namespace \`mwbc<pid>\` (lo MTU 1500, TSO/GSO/GRO off), ` +
          `input hook, \`numgen random mod 1000 < ${LOSS_PER_MILLE} drop\` on UDP between the ` +
          `two nodes' peer ports only (gRPC between clients and nodes is untouched): ` +
          `${share(counters.meshwire_dropped, counters.meshwire_seen)} packets dropped; ` +
          `and on TCP to and from the NATS server's port: ` +
          `${share(counters.nats_dropped, counters.nats_seen)}. A NATS request crosses ` +
          'four lossy TCP legs (requester -> server -> responder -> server -> requester), a ' +
          'cluster request two lossy UDP legs (A -> B -> A) and four loss-free gRPC legs.';
  } else {
    lossNote = 'Run without the lossy part (--no-loss or --smoke).';
  }
  const figures: Record<string, number> = {};
  for (const [k, v] of Object.entries(runs.medians())) figures[k] = roundFigure(v);
  const ratios = computeComparisons(figures);
  log(`done in ${Math.round((Date.now() - started) / 1000)} s`);
  for (const def of COMPARISONS) {
    const r = ratios[def.key];
    if (r === undefined || !def.target) continue;
    log(
      `${def.key} = ${r} (target ${formatTarget(def)}: ${targetMet(def, r) ? 'met' : 'NOT met'})`
    );
  }
  const spread: Record<string, number[]> = {};
  for (const n of runs.names()) spread[n] = runs.runs(n).map(roundFigure);
  const processes = { ...Meshwire.transports(), ...lossTransports };
  log(
    `UDP driver/AEAD backend by node: ${Object.entries(processes)
      .map(([p, s]) => `${p} ${s}`)
      .join(', ')}`
  );
  publishRun({
    name: 'cluster',
    command: 'make bench-cluster',
    figures,
    ratios,
    spread,
    runs: opts.runs,
    timing: opts.timing,
    smoke: opts.smoke,
    write: opts.write,
    extraMeta: {
      loss_per_mille: opts.loss && counters ? LOSS_PER_MILLE : 0,
      loss_counters: counters ?? {},
    },
    render: renderSection,
    processes,
    log,
    notes: [
      'Request p50/p99: unary Request with `target: {peer_id: node-b}`, answered by a ' +
        'responder on node B through Subscribe + unary Respond. request_rps_64: one ' +
        'RequestStream with 64 requests in flight, answered through Subscribe (max_batch ' +
        '64) + RespondStream. NATS: `nc.request` (64 concurrent for the throughput).',
      'Pub/sub: SendStream with 256 messages per request, at most 8 unacked, paced by a ' +
        "credit window of 65,536 messages fed by the subscriber's count (bench-local's " +
        'publisher and subscriber); NATS: `publish` with `flush()` every 1,024 messages.',
      lossNote,
      `Host load average (1 min) ${loadBefore.toFixed(1)} at the start and ` +
        `${loadavg()[0]!.toFixed(1)} at the end: the machine is shared with other work, ` +
        'which widens the spread (see the runs); the interleaving keeps the ratios ' +
        'comparable.',
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
