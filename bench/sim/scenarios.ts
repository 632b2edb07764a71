/**
 * The simulator's scenarios over a SimCluster: steady traffic (Send, queue groups,
 * Request) with loss, duplication and reordering; subscribe/unsubscribe storms; a node
 * crash and restart; a partition and its heal; a node joining a running cluster. Each
 * runs the same workload and the DeliveryChecker counts what breaks a delivery property.
 * Every random choice comes from the seed: a run replays.
 */
import type { LinkConditions } from '../../src/transport';
import { seededRandom } from '../../src/transport';
import type { Subscription } from '../../src/node';
import type { Probe, Reachable } from './checker';
import { DeliveryChecker } from './checker';
import type { SimNode } from './sim-cluster';
import { SimCluster } from './sim-cluster';
import type { Timer } from '../../src/common';

export const SCENARIOS = ['steady', 'storm', 'crash', 'partition', 'join'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface ScenarioOptions {
  scenario: ScenarioName;
  nodes: number;
  seed: number;
  /** Virtual time of the scenario's traffic phase. */
  durationMs: number;
  /** Messages plus requests per virtual second, cluster-wide. @default 200 */
  rate?: number;
  link?: LinkConditions;
  /** Progress lines (stderr in the CLI). */
  log?: (line: string) => void;
}

export interface ScenarioResult {
  scenario: ScenarioName;
  nodes: number;
  seed: number;
  virtualMs: number;
  realMs: number;
  figures: Record<string, number>;
  violations: Record<string, number>;
}

/** 2% loss, 1% duplication, 2% reordering, 0.5-3 ms one way: the lossy cluster. */
export const LOSSY_LINK: LinkConditions = {
  lossRate: 0.02,
  duplicateRate: 0.01,
  reorderRate: 0.02,
  reorderDelayMs: 5,
  delayMs: [0.5, 3],
};

/**
 * How often (virtual ms) whole-mesh conditions are checked: they cost O(N^2), and a check
 * on every timer instant made the driver, not the nodes, the bottleneck at 64+ nodes.
 */
export const MESH_POLL_MS = 5;

/** Deadline of every Request and DELIVERED Send of the workload. */
const CALL_TIMEOUT_MS = 5000;

const PLAIN = 'sim.plain';
const GROUP_PREFIX = 'sim.q';
const GROUP = 'workers';
const RPC_TOPIC = 'sim.rpc.echo';

/** Whether every running node other than `node` has `node`'s interest in (pattern, group). */
export function interestSeen(
  cluster: SimCluster,
  node: SimNode,
  pattern: string,
  group: string,
  present = true
): boolean {
  for (const other of cluster.running()) {
    if (other === node || !other.app) continue;
    const has = other.app.node.interest
      .of(node.id)
      .some(i => i.pattern === pattern && i.queueGroup === group);
    if (has !== present) return false;
  }
  return true;
}

/** Interest tables that disagree with what their peer subscribes to (after a settle). */
export function interestMismatches(cluster: SimCluster): number {
  const running = cluster.running();
  let bad = 0;
  for (const owner of running) {
    const want = new Set(
      (owner.app?.node.localInterests() ?? []).map(i => `${i.queueGroup}\u0000${i.pattern}`)
    );
    for (const other of running) {
      if (other === owner || !other.app) continue;
      const have = other.app.node.interest.of(owner.id);
      const same =
        have.length === want.size && have.every(i => want.has(`${i.queueGroup}\u0000${i.pattern}`));
      if (!same) bad++;
    }
  }
  return bad;
}

/**
 * The traffic of every scenario: plain subscribers and a queue group watched by the
 * checker, echo responders, and a timer that sends at `rate` per virtual second from
 * random running nodes (Send ACCEPTED and DELIVERED, queue-group Send, Request).
 */
export class Workload {
  readonly checker: DeliveryChecker;
  readonly responders: Array<{ node: SimNode; sub: Subscription }> = [];
  private timer: Timer | undefined;
  private readonly rnd: () => number;
  /** Nodes that send nothing (a victim about to crash). */
  readonly quiet = new Set<SimNode>();
  /** Requests and DELIVERED sends still pending. */
  pending = 0;

  constructor(
    private readonly cluster: SimCluster,
    seed: number
  ) {
    this.rnd = seededRandom(seed ^ 0x5eed);
    this.checker = new DeliveryChecker(() => cluster.clock.now());
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.rnd() * items.length)] as T;
  }

  /** A plain subscriber on `node` watched by the checker. */
  plainProbe(node: SimNode): Probe {
    const sub = (node.app as NonNullable<SimNode['app']>).node.subscribe({
      patterns: [`${PLAIN}.>`],
      bufferSize: 65_536,
    });
    return this.checker.watch(node, sub, PLAIN);
  }

  /** A member of the queue group on `node` watched by the checker. */
  groupProbe(node: SimNode): Probe {
    const sub = (node.app as NonNullable<SimNode['app']>).node.subscribe({
      patterns: [`${GROUP_PREFIX}.>`],
      queueGroup: GROUP,
      bufferSize: 65_536,
    });
    return this.checker.watch(node, sub, GROUP_PREFIX, GROUP);
  }

  /** An echo responder on `node`. */
  responder(node: SimNode): void {
    const mesh = (node.app as NonNullable<SimNode['app']>).node;
    const sub = mesh.subscribe({ patterns: [RPC_TOPIC], bufferSize: 65_536 });
    sub.onReadable(() => {
      for (let b = sub.take(); b; b = sub.take()) {
        for (const d of b.deliveries) {
          if (mesh.state !== 'running') continue;
          try {
            const r = mesh.respond(d.replyTo, {
              id: '',
              topic: '',
              payload: d.message.payload,
              headers: {},
            });
            if (r) r.catch(() => undefined);
          } catch {
            // the requester gave up or this node is stopping: the request fails there
          }
        }
      }
    });
    this.responders.push({ node, sub });
  }

  /** Waits (virtual time) until every probe's interest is everywhere, then marks them stable. */
  async settleProbes(maxMs = 30_000): Promise<boolean> {
    const open = this.checker.probes.filter(p => !p.closed && p.since === Infinity);
    const seen = (): boolean =>
      open.every(p => interestSeen(this.cluster, p.node, `${p.prefix}.>`, p.group)) &&
      this.responders.every(r => interestSeen(this.cluster, r.node, RPC_TOPIC, ''));
    const ok = await this.cluster.clock.waitFor(seen, maxMs);
    for (const p of open) this.checker.stable(p);
    return ok;
  }

  /** Starts sending `rate` messages/requests per virtual second. */
  start(rate: number): void {
    const interval = 1000 / rate;
    const tick = (): void => {
      this.timer = this.cluster.clock.setTimer(interval, tick);
      this.sendOne();
    };
    this.timer = this.cluster.clock.setTimer(interval, tick);
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  /** A call settled: later than its deadline (and a second of slack) means it hung. */
  private settled(issuedAt: number): void {
    this.pending--;
    if (this.cluster.clock.now() - issuedAt > CALL_TIMEOUT_MS + 1000) {
      this.checker.violation('request_hung');
    }
  }

  private sendOne(): void {
    const senders = this.cluster.running().filter(n => !this.quiet.has(n));
    if (senders.length === 0) return;
    const sender = this.pick(senders);
    const mesh = (sender.app as NonNullable<SimNode['app']>).node;
    const roll = this.rnd();
    const checker = this.checker;
    try {
      if (roll < 0.15 && this.responders.length > 0) {
        const reachable = checker.reachable;
        const expected =
          reachable !== undefined &&
          checker.groupsHealthy &&
          this.responders.every(r => r.node.app && reachable(sender, r.node));
        this.pending++;
        const issuedAt = this.cluster.clock.now();
        mesh
          .request(
            { id: '', topic: RPC_TOPIC, payload: Buffer.from('ping'), headers: {} },
            undefined,
            { timeoutMs: CALL_TIMEOUT_MS }
          )
          .then(
            r => checker.requestDone(r.reply.payload.toString() === 'ping', expected),
            () => checker.requestDone(false, expected)
          )
          .finally(() => this.settled(issuedAt));
        return;
      }
      const grouped = roll < 0.4;
      const topic = `${grouped ? GROUP_PREFIX : PLAIN}.t${Math.floor(this.rnd() * 8)}`;
      const { payload } = checker.nextMessage(sender, topic);
      const delivered = this.rnd() < 0.5;
      const r = mesh.send({ id: '', topic, payload, headers: {} }, undefined, {
        ack: delivered ? 'DELIVERED' : 'ACCEPTED',
        timeoutMs: CALL_TIMEOUT_MS,
      });
      if (r instanceof Promise) {
        this.pending++;
        const issuedAt = this.cluster.clock.now();
        r.catch(() => undefined).finally(() => this.settled(issuedAt));
      }
    } catch {
      // refused at once (node stopping): nothing was handed over
    }
  }
}

/** A cluster of `n` running nodes in full mesh, connected. */
export async function startCluster(
  n: number,
  seed: number,
  link: LinkConditions,
  log: (line: string) => void = () => undefined
): Promise<{ cluster: SimCluster; connectMs: number }> {
  const cluster = new SimCluster({ seed, link });
  for (let i = 0; i < n; i++) cluster.add();
  for (const node of cluster.nodes) await cluster.start(node);
  const t0 = cluster.clock.now();
  const ok = await cluster.clock.waitFor(() => cluster.meshConnected(), 120_000, MESH_POLL_MS);
  if (!ok) throw new Error(`${cluster.unconnectedPairs()} pairs not connected after 120 s virtual`);
  const connectMs = cluster.clock.now() - t0;
  log(`${n} nodes connected in ${connectMs.toFixed(0)} ms virtual`);
  return { cluster, connectMs };
}

/** Places probes, responders: spread over the cluster, a few of each. */
function placeWorkload(cluster: SimCluster, work: Workload, exclude: Set<SimNode>): void {
  const nodes = cluster.running().filter(n => !exclude.has(n));
  const n = nodes.length;
  const at = (k: number, of: number): SimNode => nodes[Math.floor((k * n) / of) % n] as SimNode;
  for (let k = 0; k < Math.min(4, n); k++) work.plainProbe(at(k, 4));
  for (let k = 0; k < Math.min(3, n); k++) work.groupProbe(at(k * 2 + 1, 6));
  work.responder(at(1, 3));
  if (n > 2) work.responder(at(2, 3));
}

/** Runs one scenario end to end and returns its figures and violations. */
export async function runScenario(opts: ScenarioOptions): Promise<ScenarioResult> {
  const log = opts.log ?? (() => undefined);
  const realStart = performance.now();
  const link = opts.link ?? LOSSY_LINK;
  const rnd = seededRandom(opts.seed ^ 0xc0ffee);
  const joining = opts.scenario === 'join';
  const startN = joining ? Math.max(1, opts.nodes - 1) : opts.nodes;
  const { cluster, connectMs } = await startCluster(startN, opts.seed, link, log);
  const clock = cluster.clock;
  const work = new Workload(cluster, opts.seed);
  const checker = work.checker;
  const figures: Record<string, number> = { connect_ms: connectMs };
  const victim = cluster.nodes[cluster.nodes.length - 1] as SimNode;
  // The crash victim hosts no probe: what it breaks is its own traffic only.
  placeWorkload(cluster, work, new Set(opts.scenario === 'crash' ? [victim] : []));
  if (!(await work.settleProbes())) log('probes did not converge within 30 s virtual');
  const rate = opts.rate ?? 200;
  work.start(rate);
  const phase = opts.durationMs;

  switch (opts.scenario) {
    case 'steady':
      await clock.advance(phase);
      break;

    case 'storm': {
      // Subscriptions opened and closed on random nodes, 20 per virtual second per 16 nodes.
      const perSecond = Math.max(20, Math.round((20 * opts.nodes) / 16));
      const open: Subscription[] = [];
      const end = clock.now() + phase;
      let changes = 0;
      while (clock.now() < end) {
        const node = work.pick(cluster.running());
        if (open.length > 0 && rnd() < 0.5) {
          const i = Math.floor(rnd() * open.length);
          (open.splice(i, 1)[0] as Subscription).close();
        } else {
          const mesh = (node.app as NonNullable<SimNode['app']>).node;
          open.push(
            mesh.subscribe({
              patterns: [`storm.${node.id}.${Math.floor(rnd() * 50)}`],
              queueGroup: rnd() < 0.3 ? 'storm' : undefined,
            })
          );
        }
        changes++;
        await clock.advance(1000 / perSecond);
      }
      for (const s of open.splice(0)) s.close();
      figures.storm_changes = changes;
      break;
    }

    case 'crash': {
      await clock.advance(phase / 4);
      work.quiet.add(victim);
      await clock.advance(200);
      const crashAt = clock.now();
      log(`crash ${victim.id} at ${crashAt.toFixed(1)}`);
      await cluster.crash(victim);
      // Peers notice by keepalive timeout (3 pings) and drop its interest.
      await clock.waitFor(
        () =>
          cluster
            .running()
            .every(n => n.app?.node.cluster?.peerStatus(victim.id).state !== 'connected'),
        30_000,
        MESH_POLL_MS
      );
      figures.crash_detect_ms = clock.now() - crashAt;
      await clock.advance(phase / 4);
      const restartAt = clock.now();
      log(`restart ${victim.id} at ${restartAt.toFixed(1)}`);
      await cluster.start(victim);
      const ok = await clock.waitFor(() => cluster.meshConnected(), 60_000, MESH_POLL_MS);
      figures.restart_reconnect_ms = ok ? clock.now() - restartAt : -1;
      work.quiet.delete(victim);
      // The restarted node subscribes again: it must get what is sent from then on.
      work.plainProbe(victim);
      await work.settleProbes();
      figures.restart_converge_ms = clock.now() - restartAt;
      await clock.advance(phase / 2);
      break;
    }

    case 'partition': {
      await clock.advance(phase / 4);
      const running = cluster.running();
      const half = Math.ceil(running.length / 2);
      const sideA = new Set(running.slice(0, half));
      const sameSide: Reachable = (a, b) => sideA.has(a) === sideA.has(b);
      // A transition: what is in flight when the cut comes may be lost.
      checker.reachable = undefined;
      checker.groupsHealthy = false;
      await clock.advance(500);
      cluster.partition([...sideA], running.slice(half), true);
      await clock.advance(5000);
      checker.reachable = sameSide;
      await clock.advance(phase / 4);
      checker.reachable = undefined;
      cluster.partition([...sideA], running.slice(half), false);
      const healAt = clock.now();
      const ok = await clock.waitFor(
        () => cluster.meshConnected() && interestMismatches(cluster) === 0,
        60_000,
        MESH_POLL_MS
      );
      figures.heal_converge_ms = ok ? clock.now() - healAt : -1;
      checker.reachable = () => true;
      checker.groupsHealthy = true;
      await clock.advance(phase / 2);
      break;
    }

    case 'join': {
      await clock.advance(phase / 3);
      const joiner = cluster.add();
      const joinAt = clock.now();
      await cluster.start(joiner);
      const ok = await clock.waitFor(
        () => cluster.meshConnected() && interestMismatches(cluster) === 0,
        60_000,
        MESH_POLL_MS
      );
      figures.join_ms = ok ? clock.now() - joinAt : -1;
      work.plainProbe(joiner);
      await work.settleProbes();
      await clock.advance((2 * phase) / 3);
      break;
    }
  }

  work.stop();
  // Settle: retransmissions, DELIVERED acks and requests finish.
  await clock.waitFor(() => work.pending === 0, 30_000);
  if (work.pending > 0) checker.violation('request_hung', work.pending);
  await clock.advance(2000);
  const mismatches = interestMismatches(cluster);
  if (mismatches > 0) checker.violation('interest_mismatch', mismatches);
  checker.finish();
  figures.network_sent = cluster.net.sent;
  figures.network_lost = cluster.net.drops.total();
  for (const l of checker.lostSamples) log(`lost: ${l}`);
  const virtualMs = clock.now();
  await cluster.shutdown();
  const summary = checker.summary();
  return {
    scenario: opts.scenario,
    nodes: opts.nodes,
    seed: opts.seed,
    virtualMs,
    realMs: performance.now() - realStart,
    figures: { ...figures, ...summary },
    violations: Object.fromEntries(checker.violations),
  };
}
