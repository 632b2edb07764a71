/**
 * The opaque-id response table (shaped after nats.js
 * MuxSubscription): `Map<id, Pending>`, where each pending call owns its
 * timer and removes itself, and one `settle` path returns the in-flight permit whatever
 * the outcome (response, timeout, abort, close, send failure; rocketmq#604 leaked them
 * on timeout).
 *
 * Timeouts count from when the request was written to the connection, not from when it
 * was queued (rocketmq#4836); an absolute deadline, when given, is a hard stop from the
 * start. The caller's stack is captured when the request is issued, so a timeout or a
 * close that fires later from a timer still points at the code that made the call.
 */
import type { Clock, MeshwireError, Timer } from '../common';
import { CancelledError, DeadlineExceededError, ResourceExhaustedError } from '../common';

/** Where a call was issued: a captured stack, formatted only if an error needs it. */
interface CallSite {
  stack?: string;
}

export interface PendingOptions {
  /** Relative timeout, started when the request is written. */
  timeoutMs?: number;
  /** Absolute deadline on the table's clock, running from issue. */
  deadline?: number;
  signal?: AbortSignal;
  /** Capture the caller's stack (costs about a microsecond). */
  captureStack: boolean;
  /**
   * Called when the caller gives up (timeout or abort) on a request already written, so
   * the far side can be told (an rpc CANCEL).
   */
  onGiveUp?: (call: PendingCall<unknown>, err: MeshwireError) => void;
}

/** One pending call. */
export class PendingCall<T> {
  readonly id: number;
  readonly promise: Promise<T>;
  written = false;
  settled = false;
  private resolveFn!: (v: T) => void;
  private rejectFn!: (e: Error) => void;
  private timer?: Timer;
  private site?: CallSite;
  private unlisten?: () => void;
  private readonly table: RequestTable<T>;
  private readonly timeoutMs?: number;
  private readonly deadline?: number;
  private readonly onGiveUp?: (call: PendingCall<unknown>, err: MeshwireError) => void;

  constructor(table: RequestTable<T>, id: number, opts: PendingOptions) {
    this.table = table;
    this.id = id;
    this.onGiveUp = opts.onGiveUp;
    this.timeoutMs = opts.timeoutMs;
    this.deadline = opts.deadline;
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolveFn = resolve;
      this.rejectFn = reject;
    });
    if (opts.captureStack) {
      this.site = {};
      Error.captureStackTrace(this.site, PendingCall);
    }
    if (this.deadline !== undefined) {
      this.arm(this.deadline - table.clock.now());
    }
    const signal = opts.signal;
    if (signal) {
      const onAbort = () => this.giveUp(new CancelledError('request aborted by caller'));
      signal.addEventListener('abort', onAbort, { once: true });
      this.unlisten = () => signal.removeEventListener('abort', onAbort);
    }
  }

  /** The request reached the connection: start the relative timeout now. */
  markWritten(): void {
    if (this.settled || this.written) return;
    this.written = true;
    if (this.timeoutMs === undefined) return;
    const fromDeadline =
      this.deadline === undefined ? Infinity : this.deadline - this.table.clock.now();
    if (this.timeoutMs < fromDeadline) this.arm(this.timeoutMs);
  }

  /** Remaining time the far side may spend, as of now. */
  remainingMs(now: number): number {
    const a = this.timeoutMs ?? Infinity;
    const b = this.deadline === undefined ? Infinity : this.deadline - now;
    return Math.min(a, b);
  }

  resolve(v: T): void {
    if (!this.settle()) return;
    this.resolveFn(v);
  }

  fail(err: Error): void {
    if (!this.settle()) return;
    this.rejectFn(err);
  }

  /**
   * Gives `err` the stack of the call site: the error is created now, but
   * the stack it shows is the caller's.
   */
  issueError<E extends Error>(err: E): E {
    const s = this.site?.stack;
    if (s !== undefined) {
      const nl = s.indexOf('\n');
      err.stack = `${err.name}: ${err.message}${nl >= 0 ? s.slice(nl) : ''}`;
    }
    return err;
  }

  private arm(ms: number): void {
    this.timer?.cancel();
    this.timer = this.table.clock.setTimer(ms, () => {
      this.timer = undefined;
      const what = this.written ? 'no response' : 'request not even written';
      this.giveUp(
        this.issueError(
          new DeadlineExceededError(
            this.deadline !== undefined && this.table.clock.now() >= this.deadline
              ? `deadline exceeded: ${what} by the deadline`
              : `deadline exceeded: ${what} within ${this.timeoutMs} ms of writing the request`
          )
        )
      );
    });
  }

  /** Fails the call because the caller gave up, and tells the far side if it has the request. */
  private giveUp(err: MeshwireError): void {
    if (this.settled) return;
    this.fail(this.issueError(err));
    if (this.written) this.onGiveUp?.(this as PendingCall<unknown>, err);
  }

  /** The one exit: removes the entry, cancels the timer, returns the permit. Once. */
  private settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.unlisten?.();
    this.unlisten = undefined;
    this.table.remove(this);
    return true;
  }
}

export interface RequestTableInit {
  clock: Clock;
  maxInFlight: number;
  /** First opaque id handed out (tests use it to exercise the wrap at 2^32). @default 1 */
  firstId?: number;
}

export class RequestTable<T> {
  readonly clock: Clock;
  readonly maxInFlight: number;
  private readonly pending = new Map<number, PendingCall<T>>();
  private nextIdValue = 1;

  constructor(init: RequestTableInit) {
    this.clock = init.clock;
    this.maxInFlight = init.maxInFlight;
    this.nextIdValue = (init.firstId ?? 1) >>> 0;
  }

  /** Permits in use: calls issued and not yet settled. */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Issues a call: takes a permit and an opaque id no pending call is using. Throws
   * ResourceExhaustedError when every permit is taken.
   */
  add(opts: PendingOptions): PendingCall<T> {
    if (this.pending.size >= this.maxInFlight) {
      throw new ResourceExhaustedError(
        `${this.pending.size} requests already in flight on this connection (limit ${this.maxInFlight})`
      );
    }
    let id = this.nextIdValue;
    // Ids wrap at 2^32 and skip 0; one still pending is never reused.
    while (id === 0 || this.pending.has(id)) id = (id + 1) >>> 0;
    this.nextIdValue = (id + 1) >>> 0;
    const call = new PendingCall<T>(this, id, opts);
    // The constructor may already have settled it (deadline in the past fires on the
    // next tick, never synchronously, so the entry is always added first).
    this.pending.set(id, call);
    return call;
  }

  get(id: number): PendingCall<T> | undefined {
    return this.pending.get(id);
  }

  /** Completes a call by id; false when no call is pending under it (late or unknown). */
  resolve(id: number, v: T): boolean {
    const call = this.pending.get(id);
    if (!call) return false;
    call.resolve(v);
    return true;
  }

  /** Fails every pending call at once, each with its own call-site stack. */
  closeAll(makeErr: () => MeshwireError): void {
    for (const call of [...this.pending.values()]) call.fail(call.issueError(makeErr()));
  }

  /** @internal called by PendingCall.settle */
  remove(call: PendingCall<T>): void {
    if (this.pending.get(call.id) === call) this.pending.delete(call.id);
  }
}
