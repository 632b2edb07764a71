/**
 * `make bench-cli`: what `meshwire bench` (the CLI load tool) reports against one node,
 * beside NATS measured by `make bench-local`'s own NATS clients in the same run.
 *
 *   node dist/bench/cli/run.js [--runs N] [--duration-ms N] [--no-write]
 *
 * One `meshwire serve` process; the CLI runs as a child process per measurement
 * (`meshwire bench pub --json`, `meshwire bench request --json`) and its JSON summary is
 * the figure, so this table is what a user of the tool sees. The node's CPU per message
 * (or request) is read from /proc around each CLI run. Runs alternate CLI and NATS; medians.
 * Writes the `bench:cli` section of docs/benchmarks.md and bench/results/cli.json.
 */
import { execFile } from 'node:child_process';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CpuWindow, machineLine } from '../common/cpu';
import { benchLogger } from '../common/log';
import { stopProcess } from '../common/proc';
import { startLoopbackCluster } from '../features/loopback-cluster';
import {
  fmt,
  markdownTable,
  repoRoot,
  rewriteDocSection,
  writeResultsJson,
} from '../common/results';
import { RunSet, roundFigure } from '../common/stats';
import { Nats } from '../local/anchors';
import type { Timing } from '../local/scenario';

const log = benchLogger('bench-cli');
const MAIN = join(repoRoot(), 'dist', 'src', 'cli', 'main.js');

interface PubJson {
  pub: { sent: number };
  sub: {
    received: number;
    dropped: number;
    msgsPerSec: number;
    latency: { p50Ms: number } | null;
  };
}

interface RequestJson {
  answered: number;
  failed: number;
  firstError: string | null;
  msgsPerSec: number;
  latency: { p50Ms: number };
}

/** Runs the CLI with `args` and parses its one JSON line; the node's CPU per `count(json)`. */
async function cli<T>(
  args: string[],
  nodePid: number,
  count: (r: T) => number
): Promise<{ result: T; cpuUsPerOp: number }> {
  const cpu = new CpuWindow([nodePid]);
  cpu.start();
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(
      process.execPath,
      [MAIN, ...args, '--json'],
      { timeout: 120_000, maxBuffer: 1 << 20 },
      (err, out, errOut) =>
        err
          ? reject(new Error(`meshwire ${args.join(' ')}: ${err.message}\n${errOut}`))
          : resolve(out)
    )
  );
  cpu.stop();
  const result = JSON.parse(stdout.trim().split('\n').pop() ?? '') as T;
  return { result, cpuUsPerOp: cpu.usPerOp(count(result)) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      'duration-ms': { type: 'string', default: '10000' },
      'no-write': { type: 'boolean', default: false },
    },
  });
  const runsWanted = Number(values.runs);
  const durationMs = Number(values['duration-ms']);
  if (!Number.isInteger(runsWanted) || runsWanted < 1 || runsWanted > 20) {
    throw new Error(`--runs ${values.runs}: an integer from 1 to 20 expected`);
  }
  if (!Number.isInteger(durationMs) || durationMs < 500 || durationMs > 60_000) {
    throw new Error(`--duration-ms ${values['duration-ms']}: 500 to 60000 expected`);
  }
  const loadBefore = loadavg()[0]!;
  // A cluster of one: the node lists only itself (its own id is skipped as a peer).
  const { servers, grpc: addresses } = await startLoopbackCluster(['bench-cli'], {
    env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: '' },
  });
  const node = servers[0]!;
  const nats = new Nats();
  let runs = new RunSet();
  // Both tools: 128 B for the run's time (the count is only a bound).
  const common = (tool: 'pub' | 'request'): string[] => [
    'bench',
    tool,
    '--server',
    addresses[0]!,
    '--size',
    '128',
    '--duration-ms',
    String(durationMs),
    '--msgs',
    '50000000',
  ];
  const timing: Timing = { warmupMs: 1_000, durationMs };
  const natsScenarios = nats
    .scenarios()
    .filter(s => s.name === 'nats.pubsub_mps_128' || s.name === 'nats.request_rps_64');
  const pid = node.child.pid!;
  const cliPub = async (): Promise<void> => {
    // As bench-local's pub/sub: SendStream of 256 messages, 8 unacked, a 65,536 window.
    const { result: r, cpuUsPerOp } = await cli<PubJson>(
      [...common('pub'), '--batch', '256', '--in-flight', '8', '--window', '65536'],
      pid,
      j => j.sub.received
    );
    if (r.sub.dropped > 0 || r.sub.received !== r.pub.sent) {
      throw new Error(
        `bench pub: ${r.pub.sent} sent, ${r.sub.received} received, ${r.sub.dropped} dropped`
      );
    }
    runs.add('cli.pubsub_mps_128', r.sub.msgsPerSec);
    runs.add('cli.pubsub_node_cpu_us_per_msg', cpuUsPerOp);
    if (r.sub.latency) runs.add('cli.pubsub_p50_us', r.sub.latency.p50Ms * 1000);
  };
  const cliRequest = async (): Promise<void> => {
    const { result: r, cpuUsPerOp } = await cli<RequestJson>(
      [...common('request'), '--concurrency', '64'],
      pid,
      j => j.answered
    );
    if (r.failed > 0) throw new Error(`bench request: ${r.failed} failed: ${r.firstError}`);
    runs.add('cli.request_rps_64', r.msgsPerSec);
    runs.add('cli.request_node_cpu_us_per_request', cpuUsPerOp);
    runs.add('cli.request_p50_us', r.latency.p50Ms * 1000);
  };
  try {
    await nats.start();
    await cliPub(); // warm-up round, not counted
    await cliRequest();
    runs = new RunSet();
    for (let round = 1; round <= runsWanted; round++) {
      await cliPub();
      await cliRequest();
      for (const sc of natsScenarios) {
        for (const [k, v] of Object.entries(await sc.run(timing))) runs.add(k, v);
      }
      log(`run ${round}/${runsWanted} done`);
    }
  } finally {
    await nats.stop().catch(() => undefined);
    await stopProcess(node.child);
  }
  const figures: Record<string, number> = {};
  for (const [k, v] of Object.entries(runs.medians())) figures[k] = roundFigure(v);
  const ratios = {
    'cli_pubsub_mps_128/nats': figures['cli.pubsub_mps_128']! / figures['nats.pubsub_mps_128']!,
    'cli_request_rps_64/nats': figures['cli.request_rps_64']! / figures['nats.request_rps_64']!,
  };
  const row = (what: string, key: string, anchorKey?: string): string[] => {
    const v = figures[key];
    const a = anchorKey ? figures[anchorKey] : undefined;
    return [
      what,
      fmt(v),
      anchorKey ? `${fmt(a)} (NATS)` : '-',
      a && v !== undefined ? (v / a).toFixed(2) : '-',
      runs
        .runs(key)
        .map(x => fmt(x))
        .join(', '),
    ];
  };
  const table = markdownTable(
    ['figure (meshwire bench, its JSON summary)', 'meshwire', 'anchor', 'ratio', 'runs'],
    [
      row('bench pub: msgs/s received, 128 B', 'cli.pubsub_mps_128', 'nats.pubsub_mps_128'),
      row('bench pub: node CPU (us) per message', 'cli.pubsub_node_cpu_us_per_msg'),
      row('bench pub: latency p50 (us), publish to receive', 'cli.pubsub_p50_us'),
      row('bench request: requests/s, 64 in flight', 'cli.request_rps_64', 'nats.request_rps_64'),
      row('bench request: node CPU (us) per request', 'cli.request_node_cpu_us_per_request'),
      row('bench request: latency p50 (us)', 'cli.request_p50_us'),
    ]
  );
  const date = new Date().toISOString().slice(0, 16).replace('T', ' ');
  const loadAfter = loadavg()[0]!;
  const section = [
    `Command: \`make bench-cli\` (\`node dist/bench/cli/run.js\`), run ${date} UTC; Machine: ${machineLine()}.`,
    `Median of ${runsWanted} runs of ${durationMs / 1000} s each (after one discarded round), meshwire and NATS alternating. ` +
      'meshwire: one `meshwire serve` node; each figure is the `--json` summary of a `meshwire bench pub` ' +
      '(1 publisher, 1 subscriber, SendStream of 256, 8 in flight, window 65,536) or `meshwire bench request` ' +
      "(64 in flight over one RequestStream, the tool's RespondStream responder) child process, so it is what a user " +
      "of the tool sees; the node's CPU is read from /proc around each run. NATS: the clients of `make bench-local` " +
      '(the same pacing and 64 concurrent requests). The tool and `make bench-local` run the same load code ' +
      '(`src/cli/load`); a CLI figure also counts its own process start and JIT warm-up (nothing is ' +
      "discarded, as for a user), which is why its runs are 10 s rather than bench-local's 3 s after a warm-up.",
    '',
    table,
    '',
    `Host load average (1 min) ${loadBefore.toFixed(1)} at the start and ${loadAfter.toFixed(1)} at the end.`,
    '',
    'Reading: `meshwire bench pub` runs its publisher and its subscriber in one process, which ' +
      "takes most of a core at 128 B (`make bench-local` gives each its own process), and each run's " +
      'latency is mostly the 65,536-message window queued ahead of the subscriber; ' +
      '`--window` trades one for the other.',
  ].join('\n');
  log(`\n${table}`);
  if (!values['no-write']) {
    writeResultsJson(join(repoRoot(), 'bench', 'results', 'cli.json'), {
      figures,
      ratios,
      meta: { date, command: 'make bench-cli', runs: runsWanted, durationMs },
    });
    rewriteDocSection(join(repoRoot(), 'docs', 'benchmarks.md'), 'cli', section);
    log('wrote bench/results/cli.json and the bench:cli section of docs/benchmarks.md');
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
