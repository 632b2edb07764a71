/**
 * Latency budget (issue 16): process.hrtime stamps along one Request, hop by hop, in one
 * process. Off unless MESHWIRE_LATENCY_TRACE=1 at start: every call site is
 * `if (LATENCY_TRACE) traceMark(Stage.X)`, one boolean check and no allocation when off.
 *
 * Records: a bounded ring of RECORD_CAPACITY records, one per Request seen by this
 * process, each a row of STAGE_COUNT stamps (ns since start; 0 = not reached). A record
 * begins where the Request enters the process: the grpc-js call of a Request (the requester's
 * node, src/api/latency-interceptor.ts) or the rpc envelope decoder (the responder's node, traceCommit). Layers that do not
 * know the request (transport, mux) stamp the open record (send side) or a pending row
 * (receive side) that the next rpc decode adopts. So the stamps are only meaningful for one
 * Request at a time in a process: the budget tool (bench/budget/run.ts) sends them
 * sequentially. The first stamp of a stage in a record wins (a later ACK or control frame
 * does not move it).
 *
 * On exit the node writes its records to MESHWIRE_LATENCY_TRACE_DIR (src/cli/serve.ts);
 * aggregateBudget() turns them into per-stage p50/mean (pure, unit-tested).
 */
import { writeFileSync } from 'node:fs';

/** Read once at start: the switch cannot change while the process runs. */
export const LATENCY_TRACE: boolean = process.env.MESHWIRE_LATENCY_TRACE === '1';

/** Stamp points. Names say where, in the order a Request passes them. */
export const Stage = {
  GRPC_DECODE_START: 0,
  GRPC_DECODED: 1,
  API_REQUEST: 2,
  NODE_ROUTED: 3,
  DISPATCH_SEND: 4,
  RPC_ENCODED: 5,
  MUX_QUEUED: 6,
  MUX_FLUSH: 7,
  TRANSPORT_WRITE: 8,
  TRANSPORT_SEALED: 9,
  TRANSPORT_SENT: 10,
  TRANSPORT_DATAGRAM_IN: 11,
  TRANSPORT_OPENED: 12,
  TRANSPORT_PULL: 13,
  MUX_IN: 14,
  RPC_DECODED: 15,
  DISPATCH_IN: 16,
  ROUTER_QUEUED: 17,
  DELIVERY_WRITE: 18,
  DELIVERY_ENCODE_START: 19,
  DELIVERY_ENCODED: 20,
  DELIVERY_WRITTEN: 21,
  RESPOND_DECODE_START: 22,
  RESPOND_DECODED: 23,
  API_RESPOND: 24,
  REPLY_RESOLVED: 25,
  REPLY_ENCODE_START: 26,
  REPLY_ENCODED: 27,
  REPLY_WRITTEN: 28,
  GRPC_CALL_START: 29,
  GRPC_STATUS_SENT: 30,
} as const;
export type StageId = (typeof Stage)[keyof typeof Stage];

/** Stage names by id (what the budget table prints). */
export const STAGE_NAMES: readonly string[] = [
  'grpc.request.decode_start',
  'grpc.request.decoded',
  'api.request.handler',
  'node.routed',
  'dispatch.send',
  'rpc.envelope_encoded',
  'mux.queued',
  'mux.flush',
  'transport.write',
  'transport.sealed',
  'transport.sent',
  'transport.datagram_in',
  'transport.opened',
  'transport.pull',
  'mux.in',
  'rpc.decoded',
  'dispatch.in',
  'router.queued',
  'delivery.write',
  'delivery.encode_start',
  'delivery.encoded',
  'delivery.written',
  'respond.decode_start',
  'respond.decoded',
  'api.respond.handler',
  'reply.resolved',
  'reply.encode_start',
  'reply.encoded',
  'reply.written',
  'grpc.call_start',
  'grpc.status_sent',
];
export const STAGE_COUNT = STAGE_NAMES.length;
export const RECORD_CAPACITY = 4096;

const base = process.hrtime.bigint() - 1n;
let stamps: Float64Array | undefined;
const pending = new Float64Array(STAGE_COUNT);
/** Records begun so far (the open one is (begun - 1) % capacity); 0: none open. */
let begun = 0;

/** Nanoseconds since this module loaded (> 0). */
export function traceNow(): number {
  return Number(process.hrtime.bigint() - base);
}

function row(): number {
  return ((begun - 1) % RECORD_CAPACITY) * STAGE_COUNT;
}

/**
 * Opens a new record and stamps `stage` in it. Pending receive stamps are dropped: they
 * belong to traffic before this Request entered the process (control frames, acks).
 */
export function traceBegin(stage: StageId): void {
  open(false);
  stamps![row() + stage] = traceNow();
}

function open(adopt: boolean): void {
  stamps ??= new Float64Array(RECORD_CAPACITY * STAGE_COUNT);
  begun++;
  const r = row();
  stamps.fill(0, r, r + STAGE_COUNT);
  for (let i = 0; i < STAGE_COUNT; i++) {
    if (pending[i]! > 0) {
      if (adopt) stamps[r + i] = pending[i]!;
      pending[i] = 0;
    }
  }
}

/** Stamps `stage` in the open record, if not stamped yet; with none open, as pending. */
export function traceMark(stage: StageId, at: number = traceNow()): void {
  if (begun === 0 || !stamps) {
    pending[stage] = at;
    return;
  }
  const i = row() + stage;
  if (stamps[i] === 0) stamps[i] = at;
}

/** Receive side below the rpc layer: kept until the next rpc decode adopts it. */
export function tracePending(stage: StageId, at: number = traceNow()): void {
  pending[stage] = at;
}

/**
 * An rpc envelope decoded: its pending receive stamps join the open record if that one
 * has not decoded one yet (the reply on the requester's node), else a new record begins
 * (a request on the responder's node).
 */
export function traceCommit(stage: StageId): void {
  if (begun === 0 || !stamps || stamps[row() + stage] !== 0) {
    open(true);
  } else {
    const r = row();
    for (let i = 0; i < STAGE_COUNT; i++) {
      if (pending[i]! > 0) {
        if (stamps[r + i] === 0) stamps[r + i] = pending[i]!;
        pending[i] = 0;
      }
    }
  }
  stamps![row() + stage] = traceNow();
}

/** The kept records, oldest first: per record, STAGE_COUNT stamps in ns (0 = none). */
export function latencyRecords(): number[][] {
  if (!stamps) return [];
  const n = Math.min(begun, RECORD_CAPACITY);
  const out: number[][] = [];
  for (let k = begun - n; k < begun; k++) {
    const r = (k % RECORD_CAPACITY) * STAGE_COUNT;
    out.push(Array.from(stamps.subarray(r, r + STAGE_COUNT)));
  }
  return out;
}

/** Forgets every record (tests). */
export function resetLatencyTrace(): void {
  begun = 0;
  stamps = undefined;
  pending.fill(0);
}

/** Writes the records as JSON ({stages, records}) to `path`, synchronously (on exit). */
export function dumpLatencyTrace(path: string): void {
  writeFileSync(path, JSON.stringify({ stages: STAGE_NAMES, records: latencyRecords() }));
}

// ---------------------------------------------------------------- aggregation (pure)

export interface BudgetRow {
  /** Stage the interval starts at and the one it ends at. */
  from: string;
  to: string;
  /** Records that had this interval. */
  count: number;
  p50Us: number;
  meanUs: number;
  /** meanUs over the mean total of the records. */
  share: number;
  /** Mean time of `to` after the record's first stamp (orders the rows). */
  atUs: number;
}

export interface Budget {
  rows: BudgetRow[];
  records: number;
  totalP50Us: number;
  totalMeanUs: number;
}

export function median(sorted: readonly number[]): number {
  if (sorted.length === 0) return 0;
  const m = sorted.length >> 1;
  return sorted.length % 2 ? sorted[m]! : (sorted[m - 1]! + sorted[m]!) / 2;
}

/**
 * Per record, the stamps in time order; each gap between consecutive stamps is one
 * interval `from -> to`. Rows give each interval's p50 and mean (us) over the records,
 * ordered by when `to` happens on average. Records lacking any of `require` are skipped.
 */
export function aggregateBudget(
  records: readonly (readonly number[])[],
  names: readonly string[] = STAGE_NAMES,
  require: readonly number[] = []
): Budget {
  const gaps = new Map<string, { from: string; to: string; us: number[]; at: number }>();
  const totals: number[] = [];
  for (const rec of records) {
    if (require.some(s => !(rec[s]! > 0))) continue;
    const hit: [number, number][] = [];
    rec.forEach((t, s) => {
      if (t > 0) hit.push([t, s]);
    });
    if (hit.length < 2) continue;
    hit.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const t0 = hit[0]![0];
    totals.push((hit[hit.length - 1]![0] - t0) / 1000);
    for (let i = 1; i < hit.length; i++) {
      const from = names[hit[i - 1]![1]] ?? String(hit[i - 1]![1]);
      const to = names[hit[i]![1]] ?? String(hit[i]![1]);
      const key = `${from}>${to}`;
      let g = gaps.get(key);
      if (!g) gaps.set(key, (g = { from, to, us: [], at: 0 }));
      g.us.push((hit[i]![0] - hit[i - 1]![0]) / 1000);
      g.at += (hit[i]![0] - t0) / 1000;
    }
  }
  const mean = (xs: readonly number[]): number =>
    xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
  const totalMeanUs = mean(totals);
  const rows: BudgetRow[] = [...gaps.values()].map(g => {
    const m = mean(g.us);
    return {
      from: g.from,
      to: g.to,
      count: g.us.length,
      p50Us: median([...g.us].sort((a, b) => a - b)),
      // Weighted by how often the interval occurs: rows then add up to the mean total.
      meanUs: m,
      share: totalMeanUs > 0 ? (m * g.us.length) / totals.length / totalMeanUs : 0,
      atUs: g.at / g.us.length,
    };
  });
  rows.sort((a, b) => a.atUs - b.atUs);
  return {
    rows,
    records: totals.length,
    totalP50Us: median([...totals].sort((a, b) => a - b)),
    totalMeanUs,
  };
}
