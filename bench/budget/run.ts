/**
 * `make bench-budget`: the latency budget of one Request (issue 16, item 1). Starts one
 * node (local Request) and then two (cross-node Request, node-a -> node-b) with
 * MESHWIRE_LATENCY_TRACE=1, runs sequential Requests from the bench's requester process
 * (128 B, unary Request) answered by its RespondStream responder, stops the nodes (each
 * writes its hrtime stamps on exit, src/common/latency-trace.ts) and prints, per stage,
 * the p50 and mean time and its share of the client's wall time.
 *
 *   node dist/bench/budget/run.js [--requests N] [--warmup-ms N] [--only local|cross]
 *
 * Stamps are only compared inside one process: the time spent in the client, the
 * responder and on the sockets between processes is derived from gaps (see the notes it
 * prints). Prints markdown; writes nothing.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Meshwire } from '../local/meshwire';
import { fmt, markdownTable } from '../common/results';
import { machineInfo, machineLine } from '../common/cpu';
import { machineAndStacks } from '../common/results';
import type { LatencySummary } from '../common/hist';
import { aggregateBudget, Stage } from '../../src/common/latency-trace';
import type { Budget } from '../../src/common/latency-trace';
import { tuneRuntime } from '../../src/common/runtime';
import { benchLogger } from '../common/log';

const log = benchLogger('bench-budget');

interface Row {
  stage: string;
  p50Us: number;
  meanUs: number;
}

interface Dump {
  stages: string[];
  records: number[][];
}

function readDump(dir: string, nodeId: string, last: number): Dump {
  const d = JSON.parse(readFileSync(join(dir, `meshwire-latency-${nodeId}.json`), 'utf8')) as Dump;
  return { stages: d.stages, records: d.records.slice(-last) };
}

/** Intervals seen in fewer records than this share are left out of the table (counted). */
const RARE = 0.1;
let rareLeftOut = 0;

/** Rows of one process's budget, named `<who>: from -> to`; rare intervals left out. */
function rowsOf(who: string, b: Budget): Row[] {
  const common = b.rows.filter(r => r.count >= RARE * b.records);
  rareLeftOut += b.rows.length - common.length;
  return common.map(r => ({
    stage: `${who}: ${r.from} -> ${r.to}`,
    p50Us: r.p50Us,
    meanUs: r.meanUs,
  }));
}

function table(rows: Row[], client: LatencySummary, notes: string[]): string {
  const total = client.mean_us;
  const body = rows.map(r => [
    r.stage,
    fmt(r.p50Us),
    fmt(r.meanUs),
    `${((100 * r.meanUs) / total).toFixed(1)}%`,
  ]);
  body.push([
    '**wall time seen by the client**',
    `**${fmt(client.p50_us)}**`,
    `**${fmt(client.mean_us)}**`,
    '100%',
  ]);
  return (
    markdownTable(['stage', 'p50 us', 'mean us', 'share of the mean'], body) +
    '\n\n' +
    notes.map(n => `- ${n}`).join('\n')
  );
}

async function run(
  cross: boolean,
  requests: number,
  warmupMs: number
): Promise<{ markdown: string; budgets: Record<string, Budget> }> {
  const dir = mkdtempSync(join(tmpdir(), 'meshwire-budget-'));
  process.env.MESHWIRE_LATENCY_TRACE = '1';
  process.env.MESHWIRE_LATENCY_TRACE_DIR = dir;
  const m = new Meshwire(
    cross ? { crossNode: { prefix: 'cluster', target: { peerId: 'node-b' } } } : {}
  );
  let client: LatencySummary & { errors: number };
  try {
    log(`starting ${cross ? 'two nodes' : 'one node'}`);
    await m.start();
    const requester = m.requester;
    if (!requester) throw new Error('no requester process');
    const params = {
      subject: 'bench.req.stream',
      size: 128,
      target: cross ? { peerId: 'node-b' } : undefined,
    };
    // Warm-up first (not counted, its records dropped below), then exactly `requests`.
    await requester.call(
      'requestLatency',
      { ...params, warmupMs: 0, durationMs: warmupMs, maxOps: 1_000_000 },
      warmupMs + 60_000
    );
    client = await requester.call<LatencySummary & { errors: number }>(
      'requestLatency',
      { ...params, warmupMs: 0, durationMs: 600_000, maxOps: requests },
      660_000
    );
    if (client.errors > 0) throw new Error(`${client.errors} requests failed`);
  } finally {
    await m.stop();
  }
  const n = client.count;
  log(`${n} requests measured after ${warmupMs} ms of warm-up; client p50 ${client.p50_us} us`);
  const budgets: Record<string, Budget> = {};
  let rows: Row[];
  const notes: string[] = [];
  if (!cross) {
    const a = readDump(dir, 'bench', n);
    const b = aggregateBudget(a.records, a.stages, [
      Stage.GRPC_DECODE_START,
      Stage.REPLY_WRITTEN,
      Stage.RESPOND_DECODED,
    ]);
    budgets.node = b;
    rows = rowsOf('node', b).map(r =>
      r.stage === 'node: delivery.written -> respond.decode_start'
        ? { ...r, stage: `${r.stage} (responder process and its two gRPC hops)` }
        : r
    );
    rows.push({
      stage: 'client process and its two gRPC hops (client wall - node first..last stamp)',
      p50Us: client.p50_us - b.totalP50Us,
      meanUs: client.mean_us - b.totalMeanUs,
    });
    notes.push(
      `node: ${b.records} records (the last ${n} kept), first..last stamp p50 ` +
        `${fmt(b.totalP50Us)} us, mean ${fmt(b.totalMeanUs)} us.`
    );
  } else {
    const a = readDump(dir, 'node-a', n);
    const bd = readDump(dir, 'node-b', n);
    const ba = aggregateBudget(a.records, a.stages, [
      Stage.GRPC_DECODE_START,
      Stage.REPLY_WRITTEN,
      Stage.RPC_DECODED,
    ]);
    const bb = aggregateBudget(bd.records, bd.stages, [
      Stage.RPC_DECODED,
      Stage.DISPATCH_IN,
      Stage.RESPOND_DECODED,
      Stage.TRANSPORT_SENT,
    ]);
    budgets['node-a'] = ba;
    budgets['node-b'] = bb;
    rows = [];
    const gap = 'A: transport.sent -> transport.datagram_in';
    const aRows = rowsOf('A', ba);
    const gapRow = aRows.find(r => r.stage === gap);
    for (const r of aRows) {
      if (r.stage !== gap) {
        rows.push(r);
        continue;
      }
      rows.push(...rowsOf('B', bb));
      rows.push({
        stage:
          'UDP over loopback both ways, kernel and wake-ups (A gap sent -> datagram_in - B first..last)',
        p50Us: r.p50Us - bb.totalP50Us,
        meanUs: r.meanUs - bb.totalMeanUs,
      });
    }
    if (!gapRow) notes.push(`no "${gap}" interval in node-a's records: B's rows left out.`);
    rows.push({
      stage: 'client process and its two gRPC hops (client wall - node-a first..last stamp)',
      p50Us: client.p50_us - ba.totalP50Us,
      meanUs: client.mean_us - ba.totalMeanUs,
    });
    notes.push(
      `node-a: ${ba.records} records, first..last stamp p50 ${fmt(ba.totalP50Us)} us, ` +
        `mean ${fmt(ba.totalMeanUs)} us; node-b: ${bb.records} records, first..last ` +
        `p50 ${fmt(bb.totalP50Us)} us, mean ${fmt(bb.totalMeanUs)} us.`
    );
  }
  if (rareLeftOut > 0) {
    notes.push(
      `${rareLeftOut} intervals seen in fewer than ${RARE * 100}% of the records (a control ` +
        'frame or ack between two stamps) are left out; their time is in no row.'
    );
    rareLeftOut = 0;
  }
  notes.push(
    'Stamps are process.hrtime in the node processes only (MESHWIRE_LATENCY_TRACE=1); ' +
      'client and responder times are derived from gaps between node stamps and the ' +
      "client's own wall time, never by comparing clocks of two processes.",
    "What a derived row holds beyond its name: the client row also holds the node's " +
      'HTTP/2 and grpc-js work before grpc-js creates the Request call (frame and header ' +
      'parsing) and after its status is sent (socket write); the responder row holds the ' +
      "node's HTTP/2 write of the delivery and its read of the RespondStream frame.",
    'Derived rows subtract p50s from p50s (an approximation) and means from means (exact ' +
      'for the means). Shares are of the mean wall time seen by the client.'
  );
  rmSync(dir, { recursive: true, force: true });
  return { markdown: table(rows, client, notes), budgets };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string', default: '2000' },
      'warmup-ms': { type: 'string', default: '1000' },
      only: { type: 'string' },
    },
  });
  const requests = Number(values.requests);
  const warmupMs = Number(values['warmup-ms']);
  if (!Number.isInteger(requests) || requests < 10 || requests > 4000) {
    throw new Error('--requests: an integer from 10 to 4000 expected (the node keeps 4096)');
  }
  const machine = machineInfo();
  const header =
    `Machine: ${machineLine(machine)}; ${requests} sequential 128 B Requests after ${warmupMs} ms ` +
    'of warm-up, answered by one RespondStream (Subscribe max_batch 64).';
  console.log(header + '\n');
  for (const cross of [false, true]) {
    if (values.only && values.only !== (cross ? 'cross' : 'local')) continue;
    const r = await run(cross, requests, warmupMs);
    console.log(`### ${cross ? 'Cross-node Request (node-a -> node-b)' : 'Local Request'}\n`);
    // the nodes of this run, as their start-up lines said (reported, not assumed)
    console.log(machineAndStacks({ machine, processes: Meshwire.transports() }) + '\n');
    console.log(r.markdown + '\n');
  }
}

tuneRuntime();
main().then(
  () => process.exit(0),
  (e: unknown) => {
    log(`FAILED: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  }
);
