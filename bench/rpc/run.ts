/**
 * `make bench-rpc`: request/response between two Node processes, 64 in flight, 128 B and
 * 16 KiB bodies, over
 *   - meshwire mux + rpc on our reliable-UDP transport,
 *   - the same mux + rpc on kernel TCP (isolates the transport's cost),
 *   - NATS request/reply (Debian nats-server + npm nats; three processes),
 * first on loopback, then at 1% random packet loss (nftables in a network namespace made
 * for the run). Also the envelope codec's speed. Writes bench/results/rpc.json and the
 * rpc section of docs/benchmarks.md.
 *
 * Flags: --smoke (tiny windows, no namespace, results not written), --no-loss.
 * Internal: --phase loss --out FILE runs the scenarios inside the namespace.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker, freeTcpPort, startServer, stopProcess, tcpAccepts } from '../common/proc';
import { RunSet, roundFigure } from '../common/stats';
import { systemTool } from '../common/system-tool';
import { machineInfo } from '../common/cpu';
import {
  fmt,
  machineAndStacks,
  markdownTable,
  StackLog,
  repoRoot,
  rewriteDocSection,
  writeResultsJson,
} from '../common/results';
import { benchCodec } from './codec';
import type { RunParams, RunResult } from './client';
import { tuneRuntime } from '../../src/common/runtime';

type System = 'meshwire_rudp' | 'meshwire_tcp' | 'nats';
const SIZES: [string, number][] = [
  ['128b', 128],
  ['16k', 16 * 1024],
];
const IN_FLIGHT = 64;
const NETNS = `mwrpcbench${process.pid}`;
const LOSS_PER_MILLE = 10;

const args = process.argv.slice(2);
const smoke = args.includes('--smoke');
const phase = args.includes('--phase') ? args[args.indexOf('--phase') + 1] : 'main';
const outFile = args.includes('--out') ? args[args.indexOf('--out') + 1] : undefined;

const timing = smoke
  ? { runs: 1, warmupMs: 200, durationMs: 500 }
  : { runs: Number(process.env.BENCH_RPC_RUNS ?? 3), warmupMs: 1000, durationMs: 3000 };

function findNatsServer(): string {
  try {
    return (
      execFileSync('which', ['nats-server'], { encoding: 'utf8' }).trim() || '/usr/sbin/nats-server'
    );
  } catch {
    return '/usr/sbin/nats-server';
  }
}

async function withPair<T>(fn: (server: Worker, client: Worker) => Promise<T>): Promise<T> {
  const server = await Worker.start({ name: 'rpc-server', script: join(__dirname, 'server.js') });
  let client: Worker | undefined;
  try {
    client = await Worker.start({ name: 'rpc-client', script: join(__dirname, 'client.js') });
    return await fn(server, client);
  } finally {
    client?.notify('exit');
    server.notify('exit');
  }
}

async function runSystem(sys: System, out: RunSet, suffix: string): Promise<void> {
  for (let run = 0; run < timing.runs; run++) {
    for (const [label, size] of SIZES) {
      const params: RunParams = {
        size,
        inFlight: IN_FLIGHT,
        warmupMs: timing.warmupMs,
        durationMs: timing.durationMs,
        maxOps: 5_000_000,
        timeoutMs: 10_000,
      };
      let res: RunResult;
      if (sys === 'nats') {
        const port = await freeTcpPort();
        const srv = await startServer({
          name: 'nats-server',
          command: findNatsServer(),
          args: ['-a', '127.0.0.1', '-p', String(port)],
          ready: () => tcpAccepts('127.0.0.1', port),
        });
        try {
          res = await withPair(async (server, client) => {
            await server.call('natsRespond', { port, subject: 'bench.rpc' });
            await client.call('connectNats', { port });
            return client.call<RunResult>('run', params, 120_000);
          });
        } finally {
          await stopProcess(srv.child);
        }
      } else {
        res = await withPair(async (server, client) => {
          if (sys === 'meshwire_tcp') {
            const { port } = await server.call<{ port: number }>('listenTcp');
            await client.call('connectTcp', { port });
          } else {
            const { port, stack } = await server.call<{ port: number; stack: string }>(
              'listenRudp'
            );
            const dialled = await client.call<{ stack: string }>('connectRudp', { port });
            noteStack(`rpc-server${suffix}`, stack);
            noteStack(`rpc-client${suffix}`, dialled.stack);
          }
          return client.call<RunResult>('run', params, 120_000);
        });
      }
      const key = `${sys}.${label}${suffix}`;
      console.error(
        `${key} run ${run + 1}: ${Math.round(res.rps)} req/s, p50 ${res.p50_us} us, p99 ${res.p99_us} us` +
          (res.errors ? `, ${res.errors} errors (${res.firstError})` : '')
      );
      out.add(`${key}.rps`, res.rps);
      out.add(`${key}.p50_us`, res.p50_us);
      out.add(`${key}.p99_us`, res.p99_us);
      out.add(`${key}.errors`, res.errors);
    }
  }
}

/**
 * `udp_driver/aead_backend` each reliable-UDP process reported, by process (and phase):
 * every run's pair is a fresh pair of processes, so differing reports are all kept.
 */
const stacks = new StackLog();
const noteStack = (process: string, stack: string): void => stacks.note(process, stack);
const stackList = (): Record<string, string> => stacks.list();

function systems(): System[] {
  const only = process.env.BENCH_RPC_SYSTEMS?.split(',');
  if (only) return only as System[];
  return ['meshwire_rudp', 'meshwire_tcp', 'nats'];
}

async function runScenarios(suffix: string): Promise<Record<string, number>> {
  const set = new RunSet();
  for (const sys of systems()) {
    try {
      await runSystem(sys, set, suffix);
    } catch (err) {
      // One system failing (e.g. a transport still being built) must not lose the others.
      console.error(
        `${sys}${suffix} failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`
      );
      for (const n of set.names()) if (n.startsWith(`${sys}.`)) set.add(`${n}`, NaN);
      failed.push(`${sys}${suffix}`);
    }
  }
  const m = set.medians();
  for (const k of Object.keys(m)) if (!Number.isFinite(m[k])) delete m[k];
  return m;
}

const failed: string[] = [];

function sh(cmd: string, argv: string[], input?: string): void {
  execFileSync(systemTool(cmd), argv, { input, stdio: ['pipe', 'inherit', 'inherit'] });
}

/** Runs the scenarios again inside a fresh namespace whose loopback drops 1% of packets. */
async function runLossPhase(): Promise<Record<string, number>> {
  const out = join(tmpdir(), `${NETNS}.json`);
  sh('ip', ['netns', 'add', NETNS]);
  try {
    sh('ip', ['-n', NETNS, 'link', 'set', 'lo', 'up']);
    // GSO sends of the batch UDP driver are cut into datagrams at the device, as a NIC
    // would (tx-udp-segmentation off), and every packet on loopback passes the input hook
    // once after that (the output hook would see a GSO run as one packet): drop 1% of them.
    sh('ip', [
      'netns',
      'exec',
      NETNS,
      systemTool('ethtool'),
      '-K',
      'lo',
      'tx-udp-segmentation',
      'off',
    ]);
    sh(
      'ip',
      ['netns', 'exec', NETNS, systemTool('nft'), '-f', '-'],
      `table inet mwloss {\n chain in {\n  type filter hook input priority 0; policy accept;\n  numgen random mod 1000 < ${LOSS_PER_MILLE} drop\n }\n}\n`
    );
    await new Promise<void>((resolve, reject) => {
      const child = spawn(
        'ip',
        ['netns', 'exec', NETNS, process.execPath, __filename, '--phase', 'loss', '--out', out],
        { stdio: 'inherit', env: process.env }
      );
      const timer = setTimeout(() => child.kill('SIGKILL'), 30 * 60_000);
      child.on('exit', code => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new Error(`loss phase exited with code ${code}`));
      });
    });
    const result = JSON.parse(readFileSync(out, 'utf8')) as {
      figures: Record<string, number>;
      stacks: Record<string, string>;
    };
    for (const [p, s] of Object.entries(result.stacks)) noteStack(p, s);
    return result.figures;
  } finally {
    rmSync(out, { force: true });
    try {
      sh('ip', ['netns', 'del', NETNS]);
    } catch {
      console.error(`could not delete network namespace ${NETNS}`);
    }
  }
}

function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a !== undefined && b !== undefined && b > 0 ? roundFigure(a / b) : undefined;
}

function report(figures: Record<string, number>): { ratios: Record<string, number>; doc: string } {
  const ratios: Record<string, number> = {};
  const put = (k: string, v: number | undefined): void => {
    if (v !== undefined) ratios[k] = v;
  };
  for (const [label] of SIZES) {
    put(
      `meshwire_tcp_vs_nats.${label}.rps`,
      ratio(figures[`meshwire_tcp.${label}.rps`], figures[`nats.${label}.rps`])
    );
    put(
      `meshwire_rudp_vs_nats.${label}.rps`,
      ratio(figures[`meshwire_rudp.${label}.rps`], figures[`nats.${label}.rps`])
    );
    put(
      `meshwire_rudp_vs_tcp.${label}.loss1pct.p99`,
      ratio(
        figures[`meshwire_rudp.${label}.loss1pct.p99_us`],
        figures[`meshwire_tcp.${label}.loss1pct.p99_us`]
      )
    );
    put(
      `meshwire_tcp_vs_nats.${label}.loss1pct.p99`,
      ratio(
        figures[`meshwire_tcp.${label}.loss1pct.p99_us`],
        figures[`nats.${label}.loss1pct.p99_us`]
      )
    );
  }
  const rows: string[][] = [];
  const missing: string[] = [];
  for (const suffix of ['', '.loss1pct']) {
    for (const sys of ['meshwire_rudp', 'meshwire_tcp', 'nats']) {
      for (const [label] of SIZES) {
        const k = `${sys}.${label}${suffix}`;
        if (figures[`${k}.rps`] === undefined) {
          missing.push(k);
          continue;
        }
        rows.push([
          sys.replace('_', ' over ').replace('rudp', 'reliable UDP').replace('tcp', 'kernel TCP'),
          label === '128b' ? '128 B' : '16 KiB',
          suffix ? '1%' : '0',
          fmt(figures[`${k}.rps`]),
          fmt(figures[`${k}.p50_us`]),
          fmt(figures[`${k}.p99_us`]),
        ]);
      }
    }
  }
  const codecRows = SIZES.map(([label]) => [
    label === '128b' ? '128 B' : '16 KiB',
    fmt(figures[`envelope.${label}.encode_per_s`]),
    fmt(figures[`envelope.${label}.decode_per_s`]),
    fmt(figures[`envelope.${label}.overhead_bytes`]),
  ]);
  const ratioRows = Object.entries(ratios).map(([k, v]) => [k, fmt(v)]);
  const date = new Date().toISOString().slice(0, 16).replace('T', ' ');
  const doc = [
    `Command: \`make bench-rpc\` (${date} UTC, ${timing.runs} run(s) each, medians; ${timing.warmupMs} ms warm-up, ${timing.durationMs} ms measured;`,
    `${machineAndStacks({ machine: machineInfo(), processes: stackList() })}`,
    `${IN_FLIGHT} requests in flight, echo responder in a second process; NATS adds the nats-server process).`,
    'Loss: 1% of packets dropped at random by nftables on the loopback of a network namespace, both directions.',
    `Machine load (1-min load average on ${cpus().length} cores) at start ${loadAtStart.toFixed(1)}, at end ${loadavg()[0].toFixed(1)}:` +
      ' other work on the machine shares the cores, so compare rows of the same run, not runs.',
    ...(missing.length > 0
      ? ['', `No figures (the run failed, see its output): ${missing.join(', ')}.`]
      : []),
    '',
    markdownTable(['system', 'body', 'loss', 'req/s', 'p50 µs', 'p99 µs'], rows),
    '',
    'Envelope codec (request with op, remaining deadline and a `traceparent` header), per second on one core:',
    '',
    markdownTable(['body', 'encode/s', 'decode/s', 'envelope bytes'], codecRows),
    '',
    'Ratios (targets: meshwire over reliable UDP ≥ 2× NATS req/s; its p99 at 1% loss ≤ 0.2× the TCP-based p99):',
    '',
    markdownTable(['ratio', 'value'], ratioRows),
  ].join('\n');
  return { ratios, doc };
}

const loadAtStart = loadavg()[0];

async function main(): Promise<void> {
  if (phase === 'loss') {
    const figs = await runScenarios('.loss1pct');
    if (!outFile) throw new Error('--out is required with --phase loss');
    writeFileSync(outFile, JSON.stringify({ figures: figs, stacks: stackList() }));
    return;
  }
  const figures: Record<string, number> = {};
  for (const [label, size] of SIZES) {
    const c = benchCodec(size, smoke ? 200 : 1000);
    figures[`envelope.${label}.encode_per_s`] = c.encode_per_s;
    figures[`envelope.${label}.decode_per_s`] = c.decode_per_s;
    figures[`envelope.${label}.overhead_bytes`] = c.envelope_bytes;
    console.error(
      `envelope ${label}: ${Math.round(c.encode_per_s)} enc/s, ${Math.round(c.decode_per_s)} dec/s`
    );
  }
  Object.assign(figures, await runScenarios(''));
  if (!smoke && !args.includes('--no-loss')) Object.assign(figures, await runLossPhase());
  for (const k of Object.keys(figures)) figures[k] = roundFigure(figures[k]);
  const { ratios, doc } = report(figures);
  console.error(
    `UDP driver/AEAD backend as reported: ${JSON.stringify(stackList())}; machine ${JSON.stringify(machineInfo())}`
  );
  console.log(JSON.stringify({ figures, ratios }, null, 2));
  if (smoke) return;
  const root = repoRoot();
  writeResultsJson(join(root, 'bench', 'results', 'rpc.json'), {
    figures,
    ratios,
    meta: {
      command: 'make bench-rpc',
      date: new Date().toISOString(),
      runs: timing.runs,
      warmup_ms: timing.warmupMs,
      duration_ms: timing.durationMs,
      in_flight: IN_FLIGHT,
      loss_per_mille: LOSS_PER_MILLE,
      node: process.version,
      cpus: cpus().length,
      machine: machineInfo(),
      processes: stackList(),
      load_average_start: Number(loadAtStart.toFixed(2)),
      load_average_end: Number(loadavg()[0].toFixed(2)),
    },
  });
  rewriteDocSection(join(root, 'docs', 'benchmarks.md'), 'rpc', doc);
}

// this process is a load generator too: same V8 tuning as every other bench process
tuneRuntime();
main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  }
);
