/**
 * `make soak` (not part of `make test`):
 *
 * 1. The attack battery's one-million variant: MESHWIRE_SOAK_FUZZ (default 1,000,000)
 *    random and mutated datagrams at a transport node with a live connection beside them
 *    (test/integration/security/attack.ts), with the drops by reason.
 * 2. Ten minutes (MESHWIRE_SOAK_SECONDS, default 600) of mixed traffic on three nodes
 *    (`meshwire serve` processes with static peers and bearer tokens) in a network
 *    namespace where nftables drops MESHWIRE_SOAK_LOSS_PERMILLE (default 10, i.e. 1 %)
 *    of the datagrams between the nodes' UDP ports: cluster-wide Sends to subscribers on
 *    every node and Requests to responders on the other nodes. The RSS of each node is
 *    sampled every 10 s and printed as a curve.
 *
 * It fails (exit 1) when memory grows without bound. The first half is warm-up (start-up,
 * JIT, buffers and, on a shared machine, a throughput that ramps up as the load changes:
 * the first run's rule, which started after the first fifth, counted that ramp as
 * growth). Over the second half the least-squares slope of each node's RSS must add at
 * most 10 % of its mean, and the median of its last quarter must stay within 1.15x of
 * the median of its first quarter. Results: bench/results/soak.json.
 * `MESHWIRE_SOAK_VERDICT=<soak.json>` re-judges a saved curve without running anything.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client, ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import type { DeliveryBatch, MeshwireClients } from '../../src/api';
import { createClients } from '../../src/api';
import { clientSecurity } from '../../src/api/auth-client';
import { fuzz, startVictim } from '../../test/integration/security/attack';
import { systemTool } from '../common/system-tool';

const ROOT = join(__dirname, '..', '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const NS = `mwsoak${process.pid}`;
/** Set in the re-run inside the namespace (or by hand to run on the current network, without loss). */
const IN_NS = Boolean(process.env.MESHWIRE_SOAK_IN_NETNS);
const SECONDS = Number(process.env.MESHWIRE_SOAK_SECONDS ?? 600);
const FUZZ = Number(process.env.MESHWIRE_SOAK_FUZZ ?? 1_000_000);
const LOSS = Number(process.env.MESHWIRE_SOAK_LOSS_PERMILLE ?? 10);
const SAMPLE_MS = Number(process.env.MESHWIRE_SOAK_SAMPLE_MS ?? 10_000);
const TOKEN = 'soak-admin-token-0123456789abcdef';

const NODES = [
  { id: 'node-a', grpc: 17400, udp: 17401, metrics: 17464 },
  { id: 'node-b', grpc: 17410, udp: 17411, metrics: 17465 },
  { id: 'node-c', grpc: 17420, udp: 17421, metrics: 17466 },
];

function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(systemTool(cmd), args, {
    input,
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** Re-runs this script inside a fresh network namespace with the loss rule, then cleans up. */
async function runInNamespace(): Promise<number> {
  sh('ip', ['netns', 'add', NS]);
  try {
    sh('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
    const ports = NODES.map(n => n.udp).join(', ');
    sh(
      'ip',
      ['netns', 'exec', NS, systemTool('nft'), '-f', '-'],
      `table inet soak {
  counter seen {}
  counter dropped {}
  chain input {
    type filter hook input priority 0; policy accept;
    udp dport { ${ports} } counter name seen
    udp dport { ${ports} } numgen random mod 1000 < ${LOSS} counter name dropped drop
  }
}
`
    );
    const child = spawn('ip', ['netns', 'exec', NS, process.execPath, __filename], {
      stdio: 'inherit',
      env: { ...process.env, MESHWIRE_SOAK_IN_NETNS: NS },
    });
    return await new Promise<number>(resolve => child.on('exit', code => resolve(code ?? 1)));
  } catch (err) {
    sh('ip', ['netns', 'del', NS]);
    throw err;
  }
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

function unary<Res>(client: Client, method: string, req: unknown, ms = 5000): Promise<Res> {
  return new Promise((resolve, reject) => {
    // Generated clients expose RPCs by name; the shapes are checked by the proto.
    const fn = (client as unknown as Record<string, (...a: unknown[]) => void>)[method].bind(
      client
    );
    fn(req, { deadline: Date.now() + ms }, (err: ServiceError | null, res: Res) =>
      err ? reject(err) : resolve(res)
    );
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.floor(s.length / 2)];
}

/** Least-squares slope (bytes per second) of RSS over time. */
function slope(points: Array<[number, number]>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

interface Verdict {
  node: string;
  meanMB: number;
  slopeGrowthMB: number;
  ratio: number;
  ok: boolean;
}

/** Judges each node's RSS curve over the second half of the run (see the header). */
function verdict(curve: Array<{ t: number; rss: number[] }>): Verdict[] {
  const half = curve.slice(Math.floor(curve.length / 2));
  const q = Math.max(1, Math.floor(half.length / 4));
  return NODES.map((n, i) => {
    const series = half.map(c => [c.t, c.rss[i]] as [number, number]);
    const span = series.length > 1 ? series[series.length - 1][0] - series[0][0] : 0;
    const mean = series.reduce((a, p) => a + p[1], 0) / Math.max(1, series.length);
    const growth = slope(series) * span;
    const first = median(series.slice(0, q).map(p => p[1]));
    const ratio = first > 0 ? median(series.slice(-q).map(p => p[1])) / first : 1;
    return {
      node: n.id,
      meanMB: mean / 1e6,
      slopeGrowthMB: growth / 1e6,
      ratio,
      ok: growth <= 0.1 * mean && ratio <= 1.15,
    };
  });
}

function printVerdicts(verdicts: Verdict[]): boolean {
  for (const v of verdicts) {
    console.log(
      `${v.node}: second half mean RSS ${v.meanMB.toFixed(1)} MB, fitted growth ${v.slopeGrowthMB.toFixed(1)} MB, last/first quarter x${v.ratio.toFixed(2)}: ${v.ok ? 'bounded' : 'GROWING'}`
    );
  }
  return verdicts.every(v => v.ok);
}

async function fuzzPhase(): Promise<Record<string, unknown>> {
  if (FUZZ <= 0) return { skipped: true };
  const v = await startVictim();
  try {
    const stop = v.pump(1);
    await new Promise(r => setTimeout(r, 500));
    stop();
    const r = await fuzz(v, FUZZ, 20261123, 8, 100, 600_000);
    console.log(
      `fuzz: ${r.sent} datagrams sent, ${r.received} read by the node, ${r.dropsAdded} drops counted in ${r.seconds.toFixed(1)} s; heap growth max ${(r.maxHeapGrowthBytes / 1e6).toFixed(1)} MB; live connection echoed ${r.echoesDuring} bytes meanwhile`
    );
    console.log(`fuzz drops by reason: ${JSON.stringify(r.drops)}`);
    if (r.echoesDuring === 0 || v.conn.destroyed)
      throw new Error('the live connection stopped during the fuzz');
    return { ...r };
  } finally {
    await v.close();
  }
}

async function main(): Promise<number> {
  const saved = process.env.MESHWIRE_SOAK_VERDICT;
  if (saved) {
    const r = JSON.parse(readFileSync(saved, 'utf8')) as {
      curve: Array<{ t: number; rss: number[] }>;
    };
    return printVerdicts(verdict(r.curve)) ? 0 : 1;
  }
  if (!IN_NS) return runInNamespace();
  const results: Record<string, unknown> = {
    startedAt: new Date().toISOString(),
    seconds: SECONDS,
    lossPermille: LOSS,
  };
  results.fuzz = await fuzzPhase();

  const dir = mkdtempSync(join(tmpdir(), 'mw-soak-'));
  const tokens = join(dir, 'tokens.yaml');
  writeFileSync(tokens, `tokens:\n  - name: soak\n    token: ${TOKEN}\n    admin: true\n`);
  const peers = NODES.map(n => `${n.id}=127.0.0.1:${n.udp}`).join(',');
  const procs: ChildProcess[] = NODES.map(n =>
    spawn(
      process.execPath,
      [
        CLI,
        'serve',
        '--node-id',
        n.id,
        '--grpc-listen',
        `127.0.0.1:${n.grpc}`,
        '--peer-listen',
        `127.0.0.1:${n.udp}`,
        '--metrics-listen',
        `127.0.0.1:${n.metrics}`,
        '--peers',
        peers,
        '--auth-tokens-file',
        tokens,
        '--log-level',
        'warn',
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] }
    )
  );
  const clients: MeshwireClients[] = [];
  const streams: ClientReadableStream<DeliveryBatch>[] = [];
  const counters = {
    sent: 0,
    sendErrors: 0,
    delivered: 0,
    requests: 0,
    replies: 0,
    requestErrors: 0,
  };
  const errorKinds: Record<string, number> = {};
  const curve: Array<{ t: number; rss: number[] }> = [];
  let timers: NodeJS.Timeout[] = [];
  let stopAll = (): void => undefined;
  try {
    for (const n of NODES)
      clients.push(createClients(`127.0.0.1:${n.grpc}`, clientSecurity({ token: TOKEN })));
    // Wait until every node answers (start-up takes long on a loaded machine).
    for (const c of clients) {
      const until = Date.now() + 120_000;
      for (;;) {
        try {
          await unary(c.peers, 'ListPeers', {}, 2000);
          break;
        } catch (err) {
          if (Date.now() > until) throw err;
          await new Promise(r => setTimeout(r, 500));
        }
      }
    }
    let stopping = false;
    const subscribe = (i: number): void => {
      const c = clients[i];
      const sub = (
        c.messenger as unknown as { Subscribe(r: unknown): ClientReadableStream<DeliveryBatch> }
      ).Subscribe({
        topics: ['soak.events.>', `soak.rpc.${NODES[i].id}`],
        maxBatch: 64,
      });
      sub.on('data', (b: DeliveryBatch) => {
        for (const d of b.deliveries) {
          counters.delivered++;
          if (d.replyTo) {
            unary(c.messenger, 'Respond', {
              replyTo: d.replyTo,
              message: { payload: d.message.payload },
            }).catch(() => undefined);
          }
        }
      });
      sub.on('error', (e: ServiceError) => {
        if (stopping) return;
        errorKinds[`subscribe:${e.code}`] = (errorKinds[`subscribe:${e.code}`] ?? 0) + 1;
        setTimeout(() => subscribe(i), 1000); // a subscriber reconnects, as a client would
      });
      streams.push(sub);
    };
    stopAll = () => (stopping = true);
    for (let i = 0; i < NODES.length; i++) subscribe(i);
    await new Promise(r => setTimeout(r, 1000));
    const payload = Buffer.alloc(1024, 0x61);
    const count = (kind: string, e: ServiceError): void => {
      errorKinds[`${kind}:${e.code}`] = (errorKinds[`${kind}:${e.code}`] ?? 0) + 1;
    };
    timers = NODES.flatMap((n, i) => [
      setInterval(() => {
        counters.sent++;
        unary(clients[i].messenger, 'Send', {
          message: { topic: `soak.events.${n.id}`, payload },
        }).catch((e: ServiceError) => {
          counters.sendErrors++;
          count('send', e);
        });
      }, 5),
      setInterval(() => {
        const other = NODES[(i + 1) % NODES.length];
        counters.requests++;
        unary(clients[i].messenger, 'Request', {
          target: { peerId: other.id },
          message: { topic: `soak.rpc.${other.id}`, payload: payload.subarray(0, 128) },
          timeoutMs: 3000,
        }).then(
          () => counters.replies++,
          (e: ServiceError) => {
            counters.requestErrors++;
            count('request', e);
          }
        );
      }, 20),
    ]);
    const t0 = Date.now();
    while (Date.now() - t0 < SECONDS * 1000) {
      const rss = procs.map(p => (p.pid && p.exitCode === null ? rssOf(p.pid) : 0));
      const t = Math.round((Date.now() - t0) / 1000);
      curve.push({ t, rss });
      console.log(
        `t=${String(t).padStart(4)} s  RSS MB ${rss.map(r => (r / 1e6).toFixed(1)).join(' / ')}  sent ${counters.sent} (${counters.sendErrors} err) delivered ${counters.delivered} requests ${counters.requests} replies ${counters.replies}`
      );
      if (Object.keys(errorKinds).length > 0)
        console.log(`  errors by kind (status code): ${JSON.stringify(errorKinds)}`);
      if (procs.some(p => p.exitCode !== null)) throw new Error('a node exited during the soak');
      await new Promise(r =>
        setTimeout(r, Math.min(SAMPLE_MS, Math.max(0, SECONDS * 1000 - (Date.now() - t0))))
      );
    }
    curve.push({
      t: Math.round((Date.now() - t0) / 1000),
      rss: procs.map(p => (p.pid ? rssOf(p.pid) : 0)),
    });
  } finally {
    stopAll();
    for (const t of timers) clearInterval(t);
    for (const s of streams) s.cancel();
    for (const c of clients) c.close();
    for (const p of procs) p.kill('SIGTERM');
    await Promise.all(
      procs.map(p => (p.exitCode !== null ? undefined : new Promise(r => p.on('exit', r))))
    );
    try {
      results.nft = sh('nft', ['list', 'counters', 'table', 'inet', 'soak'])
        .replace(/\s+/g, ' ')
        .trim();
    } catch {
      // not in our namespace
    }
  }

  const verdicts = verdict(curve);
  Object.assign(results, { counters, errorKinds, curve, verdicts });
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(
    join(ROOT, 'bench', 'results', 'soak.json'),
    `${JSON.stringify(results, null, 2)}\n`
  );
  console.log(`errors by kind: ${JSON.stringify(errorKinds)}`);
  const bounded = printVerdicts(verdicts);
  if (counters.sent === 0 || counters.delivered === 0) {
    console.log('FAIL: no traffic flowed');
    return 1;
  }
  if (!bounded) {
    console.log('FAIL: memory grows');
    return 1;
  }
  console.log('soak: memory bounded on every node');
  return 0;
}

main().then(
  c => {
    if (!IN_NS && !process.env.MESHWIRE_SOAK_VERDICT) {
      try {
        sh('ip', ['netns', 'del', NS]);
      } catch {
        // already gone
      }
    }
    process.exit(c);
  },
  err => {
    console.error(`soak: ${(err as Error).stack ?? String(err)}`);
    if (!IN_NS) {
      try {
        sh('ip', ['netns', 'del', NS]);
      } catch {
        // already gone
      }
    }
    process.exit(1);
  }
);
