/**
 * `make chaos`: a rolling restart of five `meshwire serve` processes under steady traffic
 * (bench/chaos/churn.ts), in a network namespace (`mwchaos<pid>`) where nftables drops 1%
 * of the UDP datagrams between the nodes' peer ports (bench/cluster/netns.ts). Without
 * root, ip, nft or ethtool it runs on the host's loopback without loss, and says so.
 *
 *   node dist/bench/chaos/run.js            writes bench/results/churn.json and the
 *                                           docs/benchmarks.md section bench:churn
 * Options: --no-loss (loopback, no namespace), --no-write, --seed N, --settle-ms N
 *          (steady traffic before the first restart and after each one).
 * Internal: --in-netns runs the cluster (started by the outer run inside the namespace).
 *
 * Fails (exit 1) when an acknowledged Send was not read by its subscriber
 * (`churn.acked_lost`), a call outlived its deadline (`churn.hung_calls`), a call failed
 * with a status other than UNAVAILABLE or DEADLINE_EXCEEDED (`churn.other_status`), or a
 * message was read twice, or a node process exited without being asked to.
 */
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  markdownTable,
  fmt,
  repoRoot,
  rewriteDocSection,
  writeResultsJson,
} from '../common/results';
import {
  createNamespace,
  deleteNamespace,
  installLossRules,
  lossUnavailable,
  readCounters,
} from '../cluster/netns';
import { freePorts } from '../../test/helpers/ports';
import type { ChurnNode, ChurnResult } from './churn';
import { runChurn } from './churn';
import { benchLogger } from '../common/log';

const LOSS_PER_MILLE = 10;
const NODE_COUNT = 5;
/** Upper bound of the whole run inside the namespace (start, five restarts, checks). */
const RUN_MAX_MS = 10 * 60_000;

const log = benchLogger('chaos');

interface Options {
  loss: boolean;
  write: boolean;
  inNetns: boolean;
  seed: number;
  settleMs: number;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      'no-loss': { type: 'boolean', default: false },
      'no-write': { type: 'boolean', default: false },
      'in-netns': { type: 'boolean', default: false },
      seed: { type: 'string', default: '20261205' },
      'settle-ms': { type: 'string', default: '5000' },
    },
  });
  const int = (v: string, name: string, max: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > max) {
      throw new Error(`--${name} ${v}: an integer from 0 to ${max} expected`);
    }
    return n;
  };
  return {
    loss: !(values['no-loss'] ?? false),
    write: !(values['no-write'] ?? false),
    inNetns: values['in-netns'] ?? false,
    seed: int(values.seed!, 'seed', 2 ** 31),
    settleMs: int(values['settle-ms']!, 'settle-ms', 60_000),
  };
}

/** The figures of bench/results/churn.json. */
function figuresOf(r: ChurnResult, lossPerMille: number): Record<string, number> {
  const s = r.summary;
  return {
    'churn.acked_lost': s.acked_lost,
    'churn.hung_calls': s.hung_calls,
    'churn.other_status': s.other_status,
    'churn.duplicates': s.duplicates,
    'churn.node_crashes': r.nodeCrashes,
    'churn.request_error_ratio': Number(s.request_error_ratio.toFixed(5)),
    'churn.request_error_ratio_service': Number(s.request_error_ratio_service.toFixed(5)),
    'churn.request_error_ratio_pinned': Number(s.request_error_ratio_pinned.toFixed(5)),
    'churn.send_error_ratio': s.sends === 0 ? 0 : Number((s.send_errors / s.sends).toFixed(5)),
    'churn.reconverge_p50_ms': s.reconverge_p50_ms,
    'churn.reconverge_p99_ms': s.reconverge_p99_ms,
    'churn.requests': s.requests,
    'churn.sends': s.sends,
    'churn.sends_acked': s.sends_acked,
    'churn.acked_zero': s.acked_zero,
    'churn.unavailable': s.unavailable,
    'churn.deadline_exceeded': s.deadline_exceeded,
    'churn.max_overrun_ms': s.max_overrun_ms,
    'churn.restarts': s.restarts.length,
    'churn.loss_permille': lossPerMille,
  };
}

function render(
  figures: Record<string, number>,
  r: ChurnResult,
  notes: string[],
  date: string
): string {
  const s = r.summary;
  const perRestart = markdownTable(
    [
      'node',
      'exit',
      'drain ms',
      'start ms',
      'reconverge ms',
      'requests',
      'request errors',
      'sends',
      'send errors',
    ],
    s.restarts.map(x => [
      x.node,
      String(x.exit_code),
      fmt(x.drain_ms),
      fmt(x.start_ms),
      fmt(x.reconverge_ms),
      fmt(x.requests),
      `${fmt(x.request_errors)} (${(100 * x.request_error_ratio).toFixed(2)}%)`,
      fmt(x.sends),
      fmt(x.send_errors),
    ])
  );
  const table = markdownTable(
    ['figure', 'value'],
    Object.entries(figures).map(([k, v]) => [`\`${k}\``, fmt(v)])
  );
  return [
    `Made with \`make chaos\` (bench/chaos/run.ts) on ${date}, Node ${process.version}, ${cpus().length} CPUs.`,
    '',
    ...notes.map(n => `- ${n}`),
    '',
    table,
    '',
    'Per restart (calls started from the SIGTERM until the node routed both ways again; ' +
      '"start ms" is from the exit to health SERVING, "reconverge ms" from SERVING to routes both ways):',
    '',
    perRestart,
    '',
    `Failed calls by status code: \`${JSON.stringify(s.errors_by_code)}\` (14 UNAVAILABLE, 4 DEADLINE_EXCEEDED); ` +
      `driver subscription streams ended by status: \`${JSON.stringify(r.subscriptionEnds)}\` ` +
      '(0: ended cleanly by a draining node, then re-subscribed; 1: cancelled by the driver at the end).',
  ].join('\n');
}

/** Inside the namespace (or on loopback): the cluster, the restarts, the books. */
async function runCluster(opts: Options, lossPerMille: number): Promise<number> {
  const ports = await freePorts(3 * NODE_COUNT);
  const nodes: ChurnNode[] = Array.from({ length: NODE_COUNT }, (_, i) => ({
    id: `meshwire-${i}`,
    grpcPort: ports[3 * i]!,
    peerPort: ports[3 * i + 1]!,
    metricsPort: ports[3 * i + 2]!,
  }));
  const result = await runChurn({
    nodes,
    // A StatefulSet rolls from the highest ordinal down.
    restartOrder: nodes.map((_, i) => NODE_COUNT - 1 - i),
    tickMs: 5,
    maxInFlight: 128,
    maxCalls: 200_000,
    callDeadlineMs: 5000,
    hangSlackMs: 1000,
    maxReplyDelayMs: 250,
    settleMs: opts.settleMs,
    drainTimeoutMs: 10_000,
    waitMs: 60_000,
    seed: opts.seed,
    beforeTraffic:
      lossPerMille > 0
        ? () => {
            installLossRules({ udpPeerPorts: nodes.map(n => n.peerPort) }, lossPerMille);
            log(`loss rules installed: ${lossPerMille / 10}% of UDP between the peer ports`);
          }
        : undefined,
    log,
  });
  const s = result.summary;
  const figures = figuresOf(result, lossPerMille);
  let counters: Record<string, number> = {};
  if (lossPerMille > 0) counters = readCounters();
  console.log(JSON.stringify({ figures, restarts: s.restarts }, null, 2));
  for (const e of s.examples) log(e);
  const notes = [
    `${NODE_COUNT} nodes, each restarted once, highest ordinal first; ${opts.settleMs} ms of steady traffic before the first restart and after each; seed ${opts.seed}.`,
    lossPerMille > 0
      ? `In a network namespace, nftables dropping ${lossPerMille / 10}% of UDP between the peer ports (${counters.meshwire_dropped ?? 0} of ${counters.meshwire_seen ?? 0} datagrams dropped).`
      : 'On the host loopback WITHOUT loss (network namespaces unavailable or --no-loss).',
    'Traffic: every 5 ms a Send with ack DELIVERED targeted at the subscriber of another node and a Request by interest to a queue group with a member on every node, each twice: once through "the Service" (a node in service at random: it leaves at SIGTERM, as the chart\'s preStop sleep arranges, and returns once it routes both ways) and once pinned to any node at random (a client whose gRPC channel stays on one pod, which then sees the drain and the restart); responders reply after a random 0-250 ms, so requests are in flight when a node drains; deadline 5 s each, at most 128 calls in flight.',
    '`churn.acked_lost`: Sends acknowledged with delivered >= 1 that the target subscriber never read (docs/design.md, "Delivery guarantees"); `churn.hung_calls`: calls that ended more than 1 s after their deadline, or never.',
  ];
  if (opts.write) {
    const date = new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
    writeResultsJson(join(repoRoot(), 'bench', 'results', 'churn.json'), {
      figures,
      ratios: {},
      meta: {
        command: 'make chaos',
        date,
        node: process.version,
        cpus: cpus().length,
        seed: opts.seed,
        settle_ms: opts.settleMs,
        restarts: s.restarts,
        errors_by_code: s.errors_by_code,
        subscription_ends: result.subscriptionEnds,
        nft_counters: counters,
        duration_ms: result.durationMs,
      },
    });
    rewriteDocSection(
      join(repoRoot(), 'docs', 'benchmarks.md'),
      'churn',
      render(figures, result, notes, date)
    );
    log('wrote bench/results/churn.json and docs/benchmarks.md (section bench:churn)');
  }
  const failures = [
    s.acked_lost > 0 && `${s.acked_lost} acknowledged sends lost`,
    s.hung_calls > 0 && `${s.hung_calls} calls hung past their deadline`,
    s.other_status > 0 && `${s.other_status} calls failed with another status`,
    s.duplicates > 0 && `${s.duplicates} messages read twice`,
    result.nodeCrashes > 0 && `${result.nodeCrashes} node processes crashed`,
  ].filter(Boolean);
  if (failures.length > 0) {
    log(`FAIL: ${failures.join('; ')}`);
    return 1;
  }
  log(
    'chaos: nothing acknowledged lost, no call hung, every failure UNAVAILABLE or DEADLINE_EXCEEDED'
  );
  return 0;
}

/** Runs this script with --in-netns inside a fresh namespace; deletes it whatever happens. */
async function runInNamespace(): Promise<number> {
  const ns = `mwchaos${process.pid}`;
  const cleanup = (): void => {
    const err = deleteNamespace(ns);
    if (err) log(err);
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      cleanup();
      process.exit(130);
    });
  }
  try {
    createNamespace(ns);
    const child = spawn(
      'ip',
      ['netns', 'exec', ns, process.execPath, __filename, '--in-netns', ...process.argv.slice(2)],
      { stdio: 'inherit' }
    );
    const timer = setTimeout(() => {
      log(`run exceeded ${RUN_MAX_MS} ms: stopped`);
      child.kill('SIGKILL');
    }, RUN_MAX_MS);
    const code = await new Promise<number>(resolve => child.on('exit', c => resolve(c ?? 1)));
    clearTimeout(timer);
    return code;
  } finally {
    cleanup();
  }
}

async function main(): Promise<number> {
  const opts = options();
  if (opts.inNetns) return runCluster(opts, opts.loss ? LOSS_PER_MILLE : 0);
  if (opts.loss) {
    const why = lossUnavailable();
    if (why === undefined) return runInNamespace();
    log(`no network namespace (${why}): running on loopback WITHOUT loss`);
  }
  return runCluster(opts, 0);
}

main().then(
  code => process.exit(code),
  (err: unknown) => {
    log(`chaos: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  }
);
