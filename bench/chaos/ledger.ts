/**
 * The books of a rolling-restart run (pure: no I/O, times passed in): every call the
 * driver makes, every delivery its subscribers read, every restart; and the figures and
 * verdicts made from them.
 *
 * What "acknowledged" means here is what docs/design.md ("Delivery guarantees") promises
 * for ack DELIVERED: a Send that returned OK with `delivered` = k >= 1 was placed in k
 * matching subscriptions' buffers on its target node. Each target node has exactly one
 * subscription on the Send topics (the driver's), so k is 1 and the promise is: that
 * subscriber reads the message, unless its stream reports it dropped
 * (`DeliveryBatch.dropped`, the slow-consumer policy; counted apart). A subscriber's
 * stream that a draining node ends cleanly (status OK) must have handed over every
 * delivery first: a message missing there is lost (`acked_lost`). An OK with
 * `delivered` = 0 promises nothing (no subscription yet on a restarted node) and is
 * counted as `acked_zero`. A failed Send promises nothing either way (the design says a
 * retry may deliver twice); the driver does not retry.
 */

/** gRPC status codes the books name (the numbers of @grpc/grpc-js `status`). */
export const STATUS_OK = 0;
export const STATUS_DEADLINE_EXCEEDED = 4;
export const STATUS_UNAVAILABLE = 14;

export type CallKind = 'send' | 'request';

export interface CallRecord {
  kind: CallKind;
  seq: number;
  /** The node the call entered. */
  entry: string;
  /**
   * Entered a node chosen among all (a client whose channel stays on one pod, in service
   * or not); false: among the nodes in service (as a Service spreads calls over ready pods).
   */
  pinned: boolean;
  /** Send: the node it targets (its subscriber must read it). */
  target?: string;
  startMs: number;
  /** The call's gRPC deadline (absolute, same clock as startMs). */
  deadlineMs: number;
  endMs?: number;
  /** 0 (OK) or the gRPC status code it failed with. */
  code?: number;
  /** Send: the `delivered` count of an OK. */
  delivered?: number;
  /** Request: the reply carried the request's payload back. */
  replyMatches?: boolean;
}

export interface RestartRecord {
  node: string;
  /** SIGTERM sent. */
  termMs: number;
  /** The process exited (with `exitCode`; null when it had to be killed). */
  exitMs?: number;
  exitCode?: number | null;
  /** Health answered SERVING again. */
  servingMs?: number;
  /** It routes to and from every peer again (by-interest probes both ways). */
  convergedMs?: number;
}

export interface RestartFigures {
  node: string;
  exit_code: number | null;
  drain_ms: number;
  start_ms: number;
  reconverge_ms: number;
  requests: number;
  request_errors: number;
  request_error_ratio: number;
  sends: number;
  send_errors: number;
}

export interface ChurnSummary {
  sends: number;
  sends_acked: number;
  acked_zero: number;
  acked_lost: number;
  /** Acknowledged messages the subscriber's stream reported dropped (slow consumer). */
  acked_dropped_reported: number;
  duplicates: number;
  send_errors: number;
  requests: number;
  request_errors: number;
  request_error_ratio: number;
  /** The same for Requests through the Service and for pinned ones. */
  request_error_ratio_service: number;
  request_error_ratio_pinned: number;
  reply_mismatches: number;
  /** Failed calls by status code name, e.g. { "14": 12 }. */
  errors_by_code: Record<string, number>;
  unavailable: number;
  /** DEADLINE_EXCEEDED at the deadline (within the slack). */
  deadline_exceeded: number;
  /** Failures with any other status, or DEADLINE_EXCEEDED well before the deadline: must be 0. */
  other_status: number;
  /** Calls that ended later than their deadline plus the slack, or never. */
  hung_calls: number;
  /** The longest a call outlived its deadline (ms; 0 when none did). */
  max_overrun_ms: number;
  restarts: RestartFigures[];
  reconverge_p50_ms: number;
  reconverge_p99_ms: number;
  /** A few lost or hung calls, for the report. */
  examples: string[];
}

/** Nearest-rank percentile of `values` (0 when empty). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

const ratio = (part: number, whole: number): number => (whole === 0 ? 0 : part / whole);

export class ChurnLedger {
  readonly calls: CallRecord[] = [];
  readonly restarts: RestartRecord[] = [];
  /** Per target node: how many times each sequence number was read by its subscriber. */
  private readonly _received = new Map<string, Map<number, number>>();
  private readonly _droppedReported = new Map<string, number>();

  begin(rec: Omit<CallRecord, 'endMs' | 'code'>): CallRecord {
    const r: CallRecord = { ...rec };
    this.calls.push(r);
    return r;
  }

  /** The call ended: OK (code 0) or failed with `code`. */
  end(rec: CallRecord, nowMs: number, code: number, extra: Partial<CallRecord> = {}): void {
    if (rec.endMs !== undefined) return;
    Object.assign(rec, extra);
    rec.endMs = nowMs;
    rec.code = code;
  }

  /** The subscriber on `target` read message `seq`. */
  receive(target: string, seq: number): void {
    let m = this._received.get(target);
    if (!m) this._received.set(target, (m = new Map()));
    m.set(seq, (m.get(seq) ?? 0) + 1);
  }

  /** A DeliveryBatch on `target` said `n` deliveries were dropped. */
  droppedReported(target: string, n: number): void {
    if (n > 0) this._droppedReported.set(target, (this._droppedReported.get(target) ?? 0) + n);
  }

  inFlight(): number {
    let n = 0;
    for (const c of this.calls) if (c.endMs === undefined) n++;
    return n;
  }

  /** Figures and verdicts; a call still open at `nowMs` past its deadline + slack is hung. */
  summary(nowMs: number, hangSlackMs: number): ChurnSummary {
    const sends = this.calls.filter(c => c.kind === 'send');
    const requests = this.calls.filter(c => c.kind === 'request');
    const failed = this.calls.filter(c => c.code !== undefined && c.code !== STATUS_OK);
    const errorsByCode: Record<string, number> = {};
    for (const c of failed) errorsByCode[String(c.code)] = (errorsByCode[String(c.code)] ?? 0) + 1;
    const examples: string[] = [];
    const acked = sends.filter(c => c.code === STATUS_OK && (c.delivered ?? 0) >= 1);
    let missing = 0;
    const missingByTarget = new Map<string, number>();
    for (const c of acked) {
      if ((this._received.get(c.target!)?.get(c.seq) ?? 0) > 0) continue;
      missing++;
      missingByTarget.set(c.target!, (missingByTarget.get(c.target!) ?? 0) + 1);
      if (examples.length < 10) {
        examples.push(`acked send #${c.seq} ${c.entry}->${c.target} at ${c.startMs} not received`);
      }
    }
    // Drops the subscriber was told about are not losses (the slow-consumer policy).
    let excused = 0;
    for (const [target, n] of missingByTarget) {
      excused += Math.min(n, this._droppedReported.get(target) ?? 0);
    }
    let duplicates = 0;
    for (const m of this._received.values()) for (const n of m.values()) duplicates += n - 1;
    let hung = 0;
    let maxOverrun = 0;
    for (const c of this.calls) {
      const end = c.endMs ?? nowMs;
      const overrun = end - c.deadlineMs;
      if (overrun > maxOverrun) maxOverrun = overrun;
      if (overrun > hangSlackMs || (c.endMs === undefined && nowMs > c.deadlineMs)) {
        hung++;
        if (examples.length < 20) {
          examples.push(
            `${c.kind} #${c.seq} via ${c.entry} ${c.endMs === undefined ? 'never ended' : `ended ${overrun} ms past its deadline`}`
          );
        }
      }
    }
    const requestErrors = requests.filter(c => c.code !== undefined && c.code !== STATUS_OK);
    const restartFigures = this.restarts.map(r => this._restartFigures(r));
    const reconverge = restartFigures.map(r => r.reconverge_ms);
    const unavailable = failed.filter(c => c.code === STATUS_UNAVAILABLE).length;
    // DEADLINE_EXCEEDED is expected only at the deadline: one well before it is a wrong status.
    const atDeadline = (c: CallRecord): boolean =>
      c.code === STATUS_DEADLINE_EXCEEDED && c.endMs! >= c.deadlineMs - hangSlackMs;
    const deadline = failed.filter(atDeadline).length;
    for (const c of failed) {
      if (c.code === STATUS_UNAVAILABLE || atDeadline(c)) continue;
      if (examples.length < 30)
        examples.push(
          `${c.kind} #${c.seq} via ${c.entry}: status ${c.code} ${c.deadlineMs - c.endMs!} ms before its deadline`
        );
    }
    return {
      sends: sends.length,
      sends_acked: acked.length,
      acked_zero: sends.filter(c => c.code === STATUS_OK && (c.delivered ?? 0) === 0).length,
      acked_lost: missing - excused,
      acked_dropped_reported: excused,
      duplicates,
      send_errors: sends.filter(c => c.code !== undefined && c.code !== STATUS_OK).length,
      requests: requests.length,
      request_errors: requestErrors.length,
      request_error_ratio: ratio(requestErrors.length, requests.length),
      request_error_ratio_service: ratio(
        requestErrors.filter(c => !c.pinned).length,
        requests.filter(c => !c.pinned).length
      ),
      request_error_ratio_pinned: ratio(
        requestErrors.filter(c => c.pinned).length,
        requests.filter(c => c.pinned).length
      ),
      reply_mismatches: requests.filter(c => c.code === STATUS_OK && c.replyMatches === false)
        .length,
      errors_by_code: errorsByCode,
      unavailable,
      deadline_exceeded: deadline,
      other_status: failed.length - unavailable - deadline,
      hung_calls: hung,
      max_overrun_ms: Math.max(0, maxOverrun),
      restarts: restartFigures,
      reconverge_p50_ms: percentile(reconverge, 50),
      reconverge_p99_ms: percentile(reconverge, 99),
      examples,
    };
  }

  /** One restart: the calls started from its SIGTERM until it had re-converged. */
  private _restartFigures(r: RestartRecord): RestartFigures {
    const until = r.convergedMs ?? Number.POSITIVE_INFINITY;
    const inWindow = this.calls.filter(c => c.startMs >= r.termMs && c.startMs < until);
    const reqs = inWindow.filter(c => c.kind === 'request');
    const sends = inWindow.filter(c => c.kind === 'send');
    const isError = (c: CallRecord): boolean => c.code !== undefined && c.code !== STATUS_OK;
    const reqErrors = reqs.filter(isError).length;
    return {
      node: r.node,
      exit_code: r.exitCode ?? null,
      drain_ms: r.exitMs === undefined ? -1 : r.exitMs - r.termMs,
      start_ms: r.servingMs === undefined || r.exitMs === undefined ? -1 : r.servingMs - r.exitMs,
      reconverge_ms:
        r.convergedMs === undefined || r.servingMs === undefined ? -1 : r.convergedMs - r.servingMs,
      requests: reqs.length,
      request_errors: reqErrors,
      request_error_ratio: reqs.length === 0 ? 0 : reqErrors / reqs.length,
      sends: sends.length,
      send_errors: sends.filter(isError).length,
    };
  }
}
