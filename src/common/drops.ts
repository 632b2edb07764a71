/**
 * Every drop goes through one ledger per node: the component that dropped (a
 * subscription, a peer sender, a connection), the reason and how many. The ledger keeps
 * totals by component and reason that outlive the objects that counted them (senders,
 * links and subscriptions come and go; /metrics totals never go down) and logs drops at
 * debug, rate-limited: the first drop of a component and reason at once, then at most
 * one line per component and reason per interval, with the count since the last line.
 *
 * Objects count through a DropCounter bound to the ledger (`drops.add(reason, n)`); the
 * counter also keeps that object's own counts where an API reports them.
 */
import type { Clock, Timer } from './clock';
import { systemClock } from './clock';

/** The part of a pino logger the ledger uses. */
export interface DropLogger {
  debug(obj: object, msg: string): void;
  /** pino's numeric level (debug is 20); above it the ledger only counts. */
  levelVal?: number;
}

/** pino's numeric value of `debug`. */
const DEBUG_LEVEL = 20;

/** True when `log` can take the ledger's debug lines (pino loggers can). */
export function isDropLogger(log: unknown): log is DropLogger {
  return (
    typeof log === 'object' &&
    log !== null &&
    typeof (log as Partial<DropLogger>).debug === 'function'
  );
}

export interface DropLedgerInit {
  /** Time for the log rate limit. @default systemClock */
  clock?: Clock;
  /** Where drops are logged at debug. @default none (totals only) */
  logger?: DropLogger;
  /** At most one log line per component and reason this often. @default 10000 */
  logIntervalMs?: number;
}

/** Default of DropLedgerInit.logIntervalMs. */
export const DROP_LOG_INTERVAL_MS = 10_000;

/**
 * One component's drops for one reason. Counters hold on to their tallies, so a drop
 * costs no lookup in the ledger; only the ledger changes them.
 */
export class DropTally {
  /** Drops so far. */
  total = 0;
  /** Dropped since the last log line. */
  unlogged = 0;
  /** Clock time of the last log line; undefined before the first. */
  loggedAt: number | undefined = undefined;
  /** The next line may go at this clock time (the first one at once). */
  nextLineAt = -Infinity;
  /** Logs `unlogged` when the interval since the last line ends. */
  timer: Timer | undefined = undefined;

  constructor(
    readonly component: string,
    readonly reason: string
  ) {}
}

export class DropLedger {
  private readonly clock: Clock;
  private readonly logger: DropLogger | undefined;
  private readonly logIntervalMs: number;
  /** By component, then reason. */
  private readonly tallies = new Map<string, Map<string, DropTally>>();

  constructor(init: DropLedgerInit = {}) {
    this.clock = init.clock ?? systemClock;
    this.logger = init.logger;
    this.logIntervalMs = init.logIntervalMs ?? DROP_LOG_INTERVAL_MS;
  }

  /** Records `n` drops of `component` for `reason` (counted, logged at debug). */
  record(component: string, reason: string, n = 1): void {
    this.add(this.tally(component, reason), n);
  }

  /** The tally of `component` and `reason` (created at zero), for add(). */
  tally(component: string, reason: string): DropTally {
    let byReason = this.tallies.get(component);
    if (!byReason) this.tallies.set(component, (byReason = new Map()));
    let tally = byReason.get(reason);
    if (!tally) byReason.set(reason, (tally = new DropTally(component, reason)));
    return tally;
  }

  /** Records `n` drops on a tally of this ledger. */
  add(tally: DropTally, n = 1): void {
    if (n <= 0) return;
    tally.total += n;
    const logger = this.logger;
    // Below debug: counted for the next line, if debug is turned on; no clock, no timer.
    if (!logger || (logger.levelVal ?? DEBUG_LEVEL) > DEBUG_LEVEL) {
      tally.unlogged += n;
      return;
    }
    // Inside a burst the armed timer reports it: no clock read per drop.
    if (tally.timer) {
      tally.unlogged += n;
      return;
    }
    const now = this.clock.now();
    if (now >= tally.nextLineAt) {
      this.log(tally, tally.unlogged + n, now);
      return;
    }
    tally.unlogged += n;
    // A burst that then stops is still reported, at the end of the interval.
    tally.timer = this.clock.setTimer(tally.nextLineAt - now, () => {
      tally.timer = undefined;
      if (tally.unlogged > 0) this.log(tally, tally.unlogged, this.clock.now());
    });
  }

  private log(tally: DropTally, dropped: number, now: number): void {
    const sinceMs = tally.loggedAt === undefined ? undefined : now - tally.loggedAt;
    tally.loggedAt = now;
    tally.nextLineAt = now + this.logIntervalMs;
    tally.unlogged = 0;
    tally.timer?.cancel();
    tally.timer = undefined;
    // `source`, not `component`: loggers are children that carry their own component.
    this.logger?.debug(
      {
        source: tally.component,
        reason: tally.reason,
        dropped,
        total: tally.total,
        ...(sinceMs === undefined ? { first: true } : { since_ms: Math.round(sinceMs) }),
      },
      sinceMs === undefined ? 'first drop' : 'drops'
    );
  }

  /** Drops of `component` for `reason` so far. */
  get(component: string, reason: string): number {
    return this.tallies.get(component)?.get(reason)?.total ?? 0;
  }

  /** Totals by reason, summed over `components` (every component when omitted). */
  snapshot(components?: readonly string[]): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [component, byReason] of this.tallies) {
      if (components && !components.includes(component)) continue;
      for (const t of byReason.values()) out[t.reason] = (out[t.reason] ?? 0) + t.total;
    }
    return out;
  }

  /** Totals by component, then reason. */
  byComponent(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const [component, byReason] of this.tallies) {
      const reasons: Record<string, number> = {};
      for (const t of byReason.values()) reasons[t.reason] = t.total;
      out[component] = reasons;
    }
    return out;
  }

  /** Every drop recorded. */
  total(): number {
    let sum = 0;
    for (const byReason of this.tallies.values()) for (const t of byReason.values()) sum += t.total;
    return sum;
  }

  /** Logs the drops not logged yet and cancels the pending log timers (shutdown). */
  flush(): void {
    const now = this.clock.now();
    for (const byReason of this.tallies.values()) {
      for (const t of byReason.values()) {
        if (t.timer && t.unlogged > 0) this.log(t, t.unlogged, now);
        t.timer?.cancel();
        t.timer = undefined;
      }
    }
  }
}

/**
 * One object's drops by reason, recorded in its ledger under its component. Without a
 * ledger (a sum of snapshots, a unit test of one object) it only counts locally.
 */
export class DropCounter<Reason extends string = string> {
  /** By reason: this object's count and its tally in the ledger. */
  private readonly slots = new Map<Reason, { count: number; tally: DropTally | undefined }>();

  constructor(
    readonly component = 'unattributed',
    private readonly ledger?: DropLedger
  ) {}

  add(reason: Reason, n = 1): void {
    let slot = this.slots.get(reason);
    if (!slot) {
      slot = { count: 0, tally: this.ledger?.tally(this.component, reason) };
      this.slots.set(reason, slot);
    }
    slot.count += n;
    if (this.ledger && slot.tally) this.ledger.add(slot.tally, n);
  }

  /** This object's drops for `reason`. */
  get(reason: Reason): number {
    return this.slots.get(reason)?.count ?? 0;
  }

  total(): number {
    let sum = 0;
    for (const slot of this.slots.values()) sum += slot.count;
    return sum;
  }

  /** A snapshot of this object's drops, reason -> count. */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [reason, slot] of this.slots) out[reason] = slot.count;
    return out;
  }
}
