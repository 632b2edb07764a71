/**
 * Per-client limits (concurrent streams, concurrent subscriptions, in-flight requests)
 * and the node-wide memory budget for messages buffered for subscribers. Every refusal
 * is a ResourceExhaustedError naming the limit, its value and the config key to raise,
 * and is counted by limit name (exported as a metric).
 *
 * A client is its tokens-file entry name when auth is on ("token:<name>", or "cert:<name>"
 * for a client-certificate identity), else its IP address (all connections from
 * one address share the limits, so opening more connections does not multiply them).
 */
import type { Meter } from '@opentelemetry/api';
import type { DropLedger, Message } from '../common';
import { BoundedRing, DropCounter, ResourceExhaustedError } from '../common';
import type { Delivery, Subscription } from '../node';

/** @default values of the limit keys (config.ts shows the same in --help). */
export const DEFAULT_MAX_STREAMS_PER_CLIENT = 1000;
export const DEFAULT_MAX_SUBSCRIPTIONS_PER_CLIENT = 1000;
export const DEFAULT_MAX_IN_FLIGHT_PER_CLIENT = 100_000;
export const DEFAULT_MEMORY_BUDGET_BYTES = 1024 * 1024 * 1024;

/** Bytes counted per buffered delivery beyond payload and topic (objects, ids, headers). */
export const DELIVERY_OVERHEAD_BYTES = 256;

export type LimitName =
  'streams_per_client' | 'subscriptions_per_client' | 'in_flight_per_client' | 'memory_budget';

/** Every limit, for metrics (each exported at zero before its first refusal). */
export const LIMIT_NAMES: readonly LimitName[] = [
  'streams_per_client',
  'subscriptions_per_client',
  'in_flight_per_client',
  'memory_budget',
];

export interface LimitsInit {
  /** Concurrent streaming calls (SendStream, Subscribe, RequestStream, RespondStream). */
  maxStreamsPerClient?: number;
  /** Concurrent Subscribe calls. */
  maxSubscriptionsPerClient?: number;
  /** Requests waiting for a reply (Request calls and RequestStream entries). */
  maxInFlightPerClient?: number;
  /** Bytes of messages buffered for subscribers, node-wide. */
  memoryBudgetBytes?: number;
}

interface ClientUsage {
  streams: number;
  subscriptions: number;
  inFlight: number;
}

type Kind = keyof ClientUsage;

const KIND_INFO: Record<Kind, { limit: LimitName; key: string; what: string }> = {
  streams: { limit: 'streams_per_client', key: 'maxStreamsPerClient', what: 'concurrent streams' },
  subscriptions: {
    limit: 'subscriptions_per_client',
    key: 'maxSubscriptionsPerClient',
    what: 'concurrent subscriptions',
  },
  inFlight: {
    limit: 'in_flight_per_client',
    key: 'maxInFlightPerClient',
    what: 'requests in flight',
  },
};

/** Counts what each client holds; entries disappear when a client holds nothing. */
export class ClientLimits {
  readonly max: Record<Kind, number>;
  /** Refusals by limit. */
  readonly rejected = new DropCounter<LimitName>();
  private readonly clients = new Map<string, ClientUsage>();

  constructor(init: LimitsInit = {}) {
    this.max = {
      streams: init.maxStreamsPerClient ?? DEFAULT_MAX_STREAMS_PER_CLIENT,
      subscriptions: init.maxSubscriptionsPerClient ?? DEFAULT_MAX_SUBSCRIPTIONS_PER_CLIENT,
      inFlight: init.maxInFlightPerClient ?? DEFAULT_MAX_IN_FLIGHT_PER_CLIENT,
    };
  }

  /** Clients currently holding anything (bounded by the number of live calls). */
  get clientCount(): number {
    return this.clients.size;
  }

  /** What `client` holds now (zeros when nothing). */
  usage(client: string): ClientUsage {
    return { ...(this.clients.get(client) ?? { streams: 0, subscriptions: 0, inFlight: 0 }) };
  }

  /**
   * Takes one unit of `kinds` for `client`, all or nothing. Returns the release function
   * (idempotent). Throws ResourceExhaustedError when one of them is at its limit.
   */
  acquire(client: string, ...kinds: Kind[]): () => void {
    let u = this.clients.get(client);
    for (const k of kinds) {
      const held = u?.[k] ?? 0;
      if (held >= this.max[k]) {
        const info = KIND_INFO[k];
        this.rejected.add(info.limit);
        throw new ResourceExhaustedError(
          `limit ${info.limit}: client ${client} already has ${held} ${info.what} (at most ${this.max[k]}); finish some first or raise ${info.key}`
        );
      }
    }
    if (!u) {
      u = { streams: 0, subscriptions: 0, inFlight: 0 };
      this.clients.set(client, u);
    }
    for (const k of kinds) u[k]++;
    const usage = u;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const k of kinds) usage[k]--;
      if (usage.streams === 0 && usage.subscriptions === 0 && usage.inFlight === 0) {
        if (this.clients.get(client) === usage) this.clients.delete(client);
      }
    };
  }
}

/** Bytes a delivery is counted for in the memory budget. */
export function deliveryBytes(m: Message): number {
  return (m.payload?.length ?? 0) + (m.topic?.length ?? 0) + DELIVERY_OVERHEAD_BYTES;
}

export type BudgetDropReason = 'memory_budget';

/**
 * The node-wide budget for messages buffered in subscriber queues. Subscriptions are
 * tracked by wrapping their offer/take (the node layer knows nothing of it): a delivery
 * that would take the total past the budget is dropped and counted, and publishers are
 * refused with RESOURCE_EXHAUSTED while the budget is full.
 */
export class MemoryBudget {
  readonly limit: number;
  /** Deliveries dropped at the budget (recorded in the node's ledger). */
  readonly drops: DropCounter<BudgetDropReason>;
  /** Publishes refused because the budget was full. */
  refused = 0;
  private usedBytes = 0;

  constructor(limitBytes: number = DEFAULT_MEMORY_BUDGET_BYTES, ledger?: DropLedger) {
    this.limit = limitBytes;
    this.drops = new DropCounter('memory_budget', ledger);
  }

  get used(): number {
    return this.usedBytes;
  }

  /**
   * Throws ResourceExhaustedError when buffering `messages` once more would pass the
   * budget (called before publishing; fan-out past it is dropped and counted in track).
   */
  admit(messages: readonly (Message | null | undefined)[]): void {
    let n = 0;
    for (const m of messages) if (m) n += deliveryBytes(m);
    if (this.usedBytes + n <= this.limit) return;
    this.refused++;
    throw new ResourceExhaustedError(
      `limit memory_budget: subscribers that are not reading hold ${this.usedBytes} buffered bytes (budget ${this.limit}); retry later, or raise memoryBudgetBytes`
    );
  }

  /** Accounts the bytes buffered in `sub` until it is read or closed. */
  track(sub: Subscription, capacity: number): void {
    const sizes = new BoundedRing<number>(Math.max(1, capacity));
    const offer = sub.offer.bind(sub);
    const take = sub.take.bind(sub);
    sub.offer = (d: Delivery): boolean => {
      const n = deliveryBytes(d.message);
      if (this.usedBytes + n > this.limit) {
        this.drops.add('memory_budget');
        return false;
      }
      const before = sub.buffered;
      if (!offer(d)) return false;
      // DROP_OLDEST evicted the oldest delivery to make room: release its bytes.
      if (sub.buffered === before) this.usedBytes -= sizes.shift() ?? 0;
      sizes.push(n);
      this.usedBytes += n;
      return true;
    };
    sub.take = () => {
      const r = take();
      if (r) for (let i = 0; i < r.deliveries.length; i++) this.usedBytes -= sizes.shift() ?? 0;
      return r;
    };
    sub.onClose(() => {
      for (let s = sizes.shift(); s !== undefined; s = sizes.shift()) this.usedBytes -= s;
    });
  }
}

/** Registers the limit metrics, read at scrape time. */
export function registerLimitMetrics(
  meter: Meter,
  limits: ClientLimits,
  budget: MemoryBudget
): void {
  meter
    .createObservableCounter('meshwire.limits.rejected', {
      description: 'Calls or requests refused with RESOURCE_EXHAUSTED, by limit',
      unit: '{call}',
    })
    .addCallback(r => {
      // Every limit at zero from the start (memory_budget is counted by the budget).
      const counts: Record<string, number> = {};
      for (const limit of LIMIT_NAMES) counts[limit] = 0;
      for (const [limit, v] of Object.entries(limits.rejected.snapshot()))
        counts[limit] = (counts[limit] ?? 0) + v;
      counts.memory_budget += budget.refused;
      for (const [limit, v] of Object.entries(counts)) r.observe(v, { limit });
    });
  meter
    .createObservableGauge('meshwire.subscriber.buffered.bytes', {
      description: 'Bytes of messages buffered for subscribers (memory budget use)',
      unit: 'By',
    })
    .addCallback(r => r.observe(budget.used));
  meter
    .createObservableCounter('meshwire.limits.dropped', {
      description: 'Deliveries dropped because the memory budget was full',
      unit: '{message}',
    })
    .addCallback(r => r.observe(budget.drops.get('memory_budget'), { reason: 'memory_budget' }));
}
