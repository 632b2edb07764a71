/**
 * What the local benchmark runs: a system (anchor or meshwire) sets up its processes and
 * offers scenarios; each scenario run returns figures by name. Shared orchestration of a
 * publisher/subscriber pair lives here too.
 */
import type { Worker } from '../common/proc';
import type { LatencyResult, ThroughputResult } from '../common/load';
import type { Target } from './pubsub-parts';
import type { CpuLatencyResult } from '../common/cpu';
import { CpuWindow } from '../common/cpu';

export interface Timing {
  warmupMs: number;
  durationMs: number;
}

export interface Scenario {
  /** e.g. `nats.pubsub_mps_128`; used in logs. */
  name: string;
  run(t: Timing): Promise<Record<string, number>>;
}

export interface System {
  name: string;
  start(): Promise<void>;
  scenarios(): Scenario[];
  stop(): Promise<void>;
}

/** Upper bounds of every load loop, whatever the timing (a loop also ends on time). */
export const MAX_OPS = 5_000_000;

/**
 * One discarded run of every scenario: a fresh Node process (the meshwire node, the
 * grpc-js floor, every client) reaches JIT steady state only after a few thousand calls,
 * and a first measured round would report start-up (seen: 2.9 ms, then 1.5 and 1.3 ms).
 */
export async function warmUpRound(
  scenarios: Scenario[],
  t: Timing,
  log: (line: string) => void
): Promise<void> {
  for (const sc of scenarios) {
    await sc.run(t);
    log(`warm-up round ${sc.name} (discarded)`);
  }
}

/** Fails loudly when a loop saw errors, so a broken scenario is not reported as a figure. */
export function checkErrors(name: string, r: LatencyResult | ThroughputResult): void {
  if (r.errors > 0) {
    throw new Error(`${name}: ${r.errors} errors, first: ${r.firstError ?? '?'}`);
  }
}

/** `{ [name]: CPU us per op }` when the run measured it, else nothing. */
export function cpuFigure(name: string, r: CpuLatencyResult): Record<string, number> {
  const v = r.cpuUsPerOp;
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? { [name]: v } : {};
}

export interface PubSubPlan {
  subject: string;
  size: number;
  /** Deliveries per subscriber stream message (meshwire) — ignored by NATS. */
  maxBatch: number;
  /** Subscriber buffer on the node (meshwire's buffer_size) — ignored by NATS. */
  bufferSize: number;
  /** Messages the publisher may run ahead of what the subscriber has received. */
  window: number;
  batch: number;
  inFlight: number;
  /** meshwire only: send every message to this node (cluster benchmark). */
  target?: Target;
}

interface PubSubMeasure {
  rate: number;
  received: number;
  dropped: number;
}

/**
 * One pub/sub run measured at the subscriber: subscribe, publish with credit fed from the
 * subscriber's progress, read the subscriber's rate over the window, stop, settle. With
 * `cpuPids`, also the CPU those processes (the nodes) used per message over the whole run,
 * warm-up included (every message sent is counted once settled): steadier than the rate
 * on a shared machine.
 */
export async function runPubSub(
  pub: Worker,
  sub: Worker,
  plan: PubSubPlan,
  t: Timing,
  cpuPids?: readonly number[]
): Promise<{ rate: number; dropped: number; cpuUsPerMsg?: number }> {
  const cpu = cpuPids && cpuPids.length > 0 ? new CpuWindow(cpuPids) : undefined;
  cpu?.start();
  await sub.call('subscribe', {
    subject: plan.subject,
    size: plan.size,
    maxBatch: plan.maxBatch,
    bufferSize: plan.bufferSize,
  });
  const off = sub.onEvent('progress', total => pub.notify('credit', total));
  try {
    const published = pub.call<{ sent: number }>(
      'publish',
      {
        subject: plan.subject,
        size: plan.size,
        maxMs: t.warmupMs + t.durationMs + 10_000,
        maxMessages: MAX_OPS * 4,
        window: plan.window,
        batch: plan.batch,
        inFlight: plan.inFlight,
        target: plan.target,
      },
      t.warmupMs + t.durationMs + 30_000
    );
    // A publisher failing early must not leave the measurement waiting for nothing.
    const failed = published.then(
      () => undefined,
      (e: unknown) => e
    );
    const m = await sub.call<PubSubMeasure>(
      'measure',
      { warmupMs: t.warmupMs, durationMs: t.durationMs },
      t.warmupMs + t.durationMs + 10_000
    );
    pub.notify('stop');
    const err = await failed;
    if (err) throw err;
    const { sent } = await published;
    await sub.call('settle', { expected: sent }, 10_000);
    cpu?.stop();
    if (m.rate <= 0) throw new Error(`${plan.subject}: the subscriber received nothing`);
    return {
      rate: m.rate,
      dropped: m.dropped,
      ...(cpu && sent > 0 ? { cpuUsPerMsg: cpu.usPerOp(sent) } : {}),
    };
  } finally {
    off();
    await sub.call('unsubscribe', {}, 10_000);
  }
}
