/**
 * How the cost of the full mesh grows with N (`make sim`): for each cluster size, N
 * simulated nodes (bench/sim/sim-cluster.ts) under 2% loss measure memory, connections
 * and keepalive packets per node, the time until an interest change is seen by every node
 * and the control messages it costs, the time a new node takes to join, and the delivery
 * violations of steady traffic through a crash and restart. Writes
 * bench/results/scale.json, the `scale` section of docs/benchmarks.md and
 * docs/scale.svg.
 *
 *   node --expose-gc dist/bench/sim/scale.js [--sizes 4,16,64,256] [--seed 1] [--budget-s 1500]
 *
 * Each size runs only while the wall-clock budget allows (a size is skipped when the
 * previous one, scaled by the growth seen so far, would overrun it).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  fmt,
  markdownTable,
  repoRoot,
  rewriteDocSection,
  writeResultsJson,
} from '../common/results';
import type { Subscription } from '../../src/node';
import type { SimNode } from './sim-cluster';
import {
  LOSSY_LINK,
  MESH_POLL_MS,
  Workload,
  interestMismatches,
  interestSeen,
  startCluster,
} from './scenarios';
import { scaleChart } from './svg';

const MB = 1024 * 1024;

export interface SizeResult {
  nodes: number;
  connectMs: number;
  heapMbPerNode: number;
  rssMbPerNode: number;
  connectionsPerNode: number;
  keepalivePpsPerNode: number;
  interestConvergeP50Ms: number;
  interestConvergeP99Ms: number;
  controlMsgsPerChange: number;
  joinMs: number;
  violations: number;
  messages: number;
  requests: number;
  realS: number;
  /** The phases' virtual durations relative to the full sweep (--phase). */
  phase: number;
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

async function measure(
  n: number,
  seed: number,
  phase: number,
  log: (l: string) => void
): Promise<SizeResult> {
  const real0 = performance.now();
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  const rss0 = process.memoryUsage().rss;
  const { cluster, connectMs } = await startCluster(n, seed, LOSSY_LINK, log);
  const clock = cluster.clock;
  await clock.advance(2000 * phase);
  gc();
  const mem = process.memoryUsage();
  const heapMbPerNode = (mem.heapUsed - heap0) / MB / n;
  const rssMbPerNode = Math.max(0, mem.rss - rss0) / MB / n;
  let connections = 0;
  for (const node of cluster.running())
    connections += node.app?.peerTransport.stats().connections ?? 0;
  log(`heap ${heapMbPerNode.toFixed(3)} MB/node, ${(connections / n).toFixed(1)} connections/node`);

  // Idle: what the mesh costs with no traffic (keepalives, their acks, retransmissions).
  const idleMs = 5000 * phase;
  const sent0 = cluster.net.sent;
  await clock.advance(idleMs);
  const keepalivePpsPerNode = (cluster.net.sent - sent0) / (idleMs / 1000) / n;
  log(`${keepalivePpsPerNode.toFixed(1)} packets/s per node idle`);

  // Interest changes, one at a time: a new pattern on one node, then its removal.
  const converge: number[] = [];
  const control: number[] = [];
  const updates = (): number => cluster.nodes.reduce((a, x) => a + x.interestUpdates, 0);
  const changes = 6;
  for (let k = 0; k < changes; k++) {
    const node = cluster.nodes[(k * 7919) % n] as SimNode;
    const mesh = node.app?.node;
    if (!mesh) continue;
    const pattern = `scale.change.${k}`;
    let sub: Subscription | undefined;
    for (const present of [true, false]) {
      const u0 = updates();
      const t0 = clock.now();
      if (present) sub = mesh.subscribe({ patterns: [pattern] });
      else sub?.close();
      const ok = await clock.waitFor(
        () => interestSeen(cluster, node, pattern, '', present),
        30_000
      );
      converge.push(ok ? clock.now() - t0 : 30_000);
      await clock.advance(100);
      control.push(updates() - u0);
    }
  }
  converge.sort((a, b) => a - b);
  const controlMsgsPerChange = control.reduce((a, b) => a + b, 0) / control.length;
  log(
    `interest converge p50 ${percentile(converge, 50).toFixed(1)} ms p99 ${percentile(converge, 99).toFixed(1)} ms, ${controlMsgsPerChange.toFixed(1)} updates/change`
  );

  // Steady traffic under 2% loss with churn: a node crashes and restarts.
  const work = new Workload(cluster, seed);
  const victim = cluster.nodes[n - 1] as SimNode;
  const others = cluster.running().filter(x => x !== victim);
  const spread = (k: number, of: number): SimNode =>
    others[Math.floor((k * others.length) / of) % others.length] as SimNode;
  for (let k = 0; k < Math.min(4, others.length); k++) work.plainProbe(spread(k, 4));
  for (let k = 0; k < Math.min(3, others.length); k++) work.groupProbe(spread(2 * k + 1, 6));
  work.responder(spread(1, 3));
  await work.settleProbes();
  work.start(200);
  await clock.advance(2000 * phase);
  work.quiet.add(victim);
  await clock.advance(200);
  await cluster.crash(victim);
  await clock.advance(4000);
  await cluster.start(victim);
  await clock.waitFor(
    () => cluster.meshConnected() && interestMismatches(cluster) === 0,
    60_000,
    MESH_POLL_MS
  );
  work.quiet.delete(victim);
  await clock.advance(2000 * phase);
  work.stop();
  await clock.waitFor(() => work.pending === 0, 30_000);
  if (work.pending > 0) work.checker.violation('request_hung', work.pending);
  await clock.advance(2000 * phase);

  // A node joining the running cluster: until it is connected both ways to everyone and
  // every interest table agrees.
  const joiner = cluster.add();
  const joinAt = clock.now();
  await cluster.start(joiner);
  const joined = await clock.waitFor(
    () => cluster.meshConnected() && interestMismatches(cluster) === 0,
    60_000,
    MESH_POLL_MS
  );
  const joinMs = joined ? clock.now() - joinAt : -1;
  const mismatches = interestMismatches(cluster);
  if (mismatches > 0) work.checker.violation('interest_mismatch', mismatches);
  work.checker.finish();
  for (const l of work.checker.lostSamples) log(`lost: ${l}`);
  const summary = work.checker.summary();
  log(`join ${joinMs.toFixed(0)} ms, ${JSON.stringify(summary)}`);
  await cluster.shutdown();
  return {
    nodes: n,
    connectMs,
    heapMbPerNode,
    rssMbPerNode,
    connectionsPerNode: connections / n,
    keepalivePpsPerNode,
    interestConvergeP50Ms: percentile(converge, 50),
    interestConvergeP99Ms: percentile(converge, 99),
    controlMsgsPerChange,
    joinMs,
    violations: work.checker.totalViolations,
    messages: summary.sent ?? 0,
    requests: summary.requests ?? 0,
    realS: (performance.now() - real0) / 1000,
    phase,
  };
}

function figuresOf(results: SizeResult[]): Record<string, number> {
  const f: Record<string, number> = {};
  const r3 = (v: number): number => Math.round(v * 1000) / 1000;
  for (const r of results) {
    const p = `scale.n${r.nodes}`;
    f[`${p}.heap_mb_per_node`] = r3(r.heapMbPerNode);
    f[`${p}.rss_mb_per_node`] = r3(r.rssMbPerNode);
    f[`${p}.connections_per_node`] = r3(r.connectionsPerNode);
    f[`${p}.keepalive_pps_per_node`] = r3(r.keepalivePpsPerNode);
    f[`${p}.interest_converge_p50_ms`] = r3(r.interestConvergeP50Ms);
    f[`${p}.interest_converge_p99_ms`] = r3(r.interestConvergeP99Ms);
    f[`${p}.control_msgs_per_change`] = r3(r.controlMsgsPerChange);
    f[`${p}.connect_ms`] = r3(r.connectMs);
    f[`${p}.join_ms`] = r3(r.joinMs);
    f[`${p}.violations`] = r.violations;
  }
  const clean = results.filter(r => r.violations === 0);
  f['scale.max_nodes'] = clean.length > 0 ? Math.max(...clean.map(r => r.nodes)) : 0;
  return f;
}

function docSection(results: SizeResult[], command: string): string {
  const rows = results.map(r => [
    String(r.nodes),
    fmt(r.heapMbPerNode),
    fmt(r.rssMbPerNode),
    fmt(r.connectionsPerNode),
    fmt(r.keepalivePpsPerNode),
    `${fmt(r.interestConvergeP50Ms)} / ${fmt(r.interestConvergeP99Ms)}`,
    fmt(r.controlMsgsPerChange),
    fmt(r.connectMs),
    fmt(r.joinMs),
    `${r.violations} (${fmt(r.messages)} msgs, ${fmt(r.requests)} reqs)`,
    (r.phase ?? 1) === 1 ? fmt(r.realS) : `${fmt(r.realS)} (phases x${r.phase})`,
  ]);
  return [
    `Command: \`${command}\` (${new Date().toISOString().slice(0, 10)}). N nodes of the shipped`,
    'assembly (grpc off) in one process over the seeded virtual network with 2% loss, 1%',
    'duplication, 2% reordering and 0.5-3 ms one way, on a virtual clock (bench/sim/).',
    'Heap: JS heap used after a full GC, less the empty process, per node; RSS added: the',
    "process's resident memory grown while the cluster started, per node (buffers and OpenSSL",
    'contexts included; RSS rarely shrinks, so a size after a larger one reads low).',
    'Keepalive packets: every datagram of the idle mesh (keepalives, their acks,',
    'retransmissions). Interest converge: from a subscribe/unsubscribe on one node until every',
    'other node has it. Violations: steady Send/queue-group/Request traffic through a node',
    'crash and restart, plus a node joining (docs/scaling.md reads these figures).',
    '',
    markdownTable(
      [
        'nodes',
        'heap MB/node',
        'RSS added MB/node',
        'connections/node',
        'idle packets/s/node',
        'interest converge p50 / p99 ms',
        'control msgs/change',
        'mesh connect ms',
        'join ms',
        'violations',
        'wall s',
      ],
      rows
    ),
    ...(results.some(r => (r.phase ?? 1) !== 1)
      ? [
          '',
          'Sizes marked "phases xP" ran with the settle, idle and traffic phases shortened by P',
          '(`--phase`), to fit the wall-clock budget. Their idle window was 5 s x P: the',
          'keepalives of a freshly connected mesh tick nearly in step, so a window under 2 s',
          'catches their rounds unevenly; read their idle packets/s as approximate.',
        ]
      : []),
    '',
    '![cost per node against N](scale.svg)',
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '4,16,64,256' },
      seed: { type: 'string', default: '1' },
      'budget-s': { type: 'string', default: '1500' },
      /** Scales the settle, idle and traffic phases (0.4: a quicker run of large sizes). */
      phase: { type: 'string', default: '1' },
      'no-write': { type: 'boolean', default: false },
      /** Re-renders the outputs from a sweep's JSON lines (stdout) without running. */
      from: { type: 'string' },
    },
  });
  if (values.from) {
    const lines = readFileSync(values.from, 'utf8')
      .split('\n')
      .filter(l => l.startsWith('{'));
    writeAll(
      lines.map(l => JSON.parse(l) as SizeResult),
      values.sizes ?? '',
      Number(values.seed)
    );
    return;
  }
  const sizes = (values.sizes ?? '').split(',').map(Number);
  const seed = Number(values.seed);
  const budgetS = Number(values['budget-s']);
  const phase = Number(values.phase);
  const log = (l: string): void => console.error(`[scale] ${l}`);
  // Warm-up: the lazily loaded assembly and its modules are not counted as per-node memory.
  const warm = await startCluster(2, seed, LOSSY_LINK);
  await warm.cluster.shutdown();
  const results: SizeResult[] = [];
  const t0 = performance.now();
  for (const n of sizes) {
    const spent = (performance.now() - t0) / 1000;
    const last = results[results.length - 1];
    // The mesh's work grows with N^2: estimate this size from the last one.
    const estimate = last ? last.realS * (n / last.nodes) ** 2 : 0;
    if (spent + estimate > budgetS) {
      log(`n=${n} skipped: about ${estimate.toFixed(0)} s more would pass the ${budgetS} s budget`);
      break;
    }
    log(`n=${n}`);
    const r = await measure(n, seed, phase, l => log(`n=${n} ${l}`));
    log(`n=${n} done in ${r.realS.toFixed(1)} s`);
    results.push(r);
    console.log(JSON.stringify(r));
    // Written after every size: a sweep stopped at its budget keeps what it measured.
    if (!values['no-write']) writeAll(results, values.sizes ?? '', seed);
  }
}

function writeAll(results: SizeResult[], sizes: string, seed: number): void {
  const root = repoRoot();
  const command = `make sim (node --expose-gc dist/bench/sim/scale.js --sizes ${sizes} --seed ${seed})`;
  writeResultsJson(join(root, 'bench/results/scale.json'), {
    figures: figuresOf(results),
    ratios: {},
    meta: {
      date: new Date().toISOString(),
      command,
      seed,
      sizes: results.map(r => r.nodes),
      phase: Object.fromEntries(results.map(r => [`n${r.nodes}`, r.phase ?? 1])),
    },
  });
  rewriteDocSection(join(root, 'docs/benchmarks.md'), 'scale', docSection(results, command));
  writeFileSync(join(root, 'docs/scale.svg'), scaleChart(results));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  }
);
