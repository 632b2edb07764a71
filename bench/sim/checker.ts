/**
 * Delivery properties of a simulated run, checked on every delivery and at the end:
 * exactly once per subscriber, one member per queue group, per-sender order, and an
 * answer to every request. Messages sent while the scenario says the paths are healthy
 * (`expect`) must arrive; the rest (across a cut, to a crashing node) may be lost but
 * still never duplicated or reordered.
 */
import type { Subscription } from '../../src/node';
import type { SimNode } from './sim-cluster';

export type ViolationKind =
  | 'duplicate'
  | 'lost'
  | 'order'
  | 'group_multiple'
  | 'group_lost'
  | 'request_failed'
  /** A request or DELIVERED send that settled well past its deadline, or never. */
  | 'request_hung'
  | 'interest_mismatch';

/** A subscription the checker watches. */
export interface Probe {
  readonly node: SimNode;
  readonly sub: Subscription;
  /** Topic prefix it subscribed to ("sim.plain" for "sim.plain.>"). */
  readonly prefix: string;
  /** Queue group ('' for a plain subscription). */
  readonly group: string;
  /** Virtual time from which messages must reach it (its interest has converged). */
  since: number;
  /** Closed (its node crashed or it unsubscribed): nothing more expected. */
  closed: boolean;
  readonly got: Map<string, number>;
  readonly lastSeq: Map<string, number>;
}

interface SentRecord {
  key: string;
  sender: SimNode;
  topic: string;
  at: number;
  /** Probes (plain) and groups that must get it. */
  expectProbes: Probe[];
  expectGroup: string | undefined;
}

/** Says whether a message from `sender` must reach a probe on `receiver` right now. */
export type Reachable = (sender: SimNode, receiver: SimNode) => boolean;

/**
 * Whether the sender has the probe's interest: routing is by interest, so a node that has
 * not heard a subscriber's interest yet (it just restarted) rightly does not send there.
 * That interest reaches everyone is checked apart (interest_mismatch, convergence times).
 */
function knowsInterest(sender: SimNode, p: Probe): boolean {
  if (sender === p.node) return true;
  const pattern = `${p.prefix}.>`;
  return (
    sender.app?.node.interest
      .of(p.node.id)
      .some(i => i.pattern === pattern && i.queueGroup === p.group) ?? false
  );
}

export class DeliveryChecker {
  readonly probes: Probe[] = [];
  readonly violations = new Map<ViolationKind, number>();
  private readonly sent: SentRecord[] = [];
  private readonly nextSeq = new Map<string, number>();
  /** Which paths are healthy now; undefined: nothing is expected (a transition). */
  reachable: Reachable | undefined = () => true;
  /** Whether queue-group messages and requests are expected to succeed now. */
  groupsHealthy = true;
  /** The first few expected deliveries that never came (for a report). */
  readonly lostSamples: string[] = [];
  delivered = 0;
  sentCount = 0;
  requests = 0;
  requestsOk = 0;

  constructor(private readonly now: () => number) {}

  violation(kind: ViolationKind, n = 1): void {
    this.violations.set(kind, (this.violations.get(kind) ?? 0) + n);
  }

  get totalViolations(): number {
    let n = 0;
    for (const v of this.violations.values()) n += v;
    return n;
  }

  /** Watches a subscription's deliveries. */
  watch(node: SimNode, sub: Subscription, prefix: string, group = ''): Probe {
    const probe: Probe = {
      node,
      sub,
      prefix,
      group,
      since: Infinity,
      closed: false,
      got: new Map(),
      lastSeq: new Map(),
    };
    sub.onReadable(() => {
      for (let b = sub.take(); b; b = sub.take()) {
        for (const d of b.deliveries) this.onDelivery(probe, d.message.payload.toString());
      }
    });
    this.probes.push(probe);
    return probe;
  }

  /** The probe's interest has reached every node: messages from now on must arrive. */
  stable(probe: Probe): void {
    probe.since = this.now();
  }

  /** Stops expecting anything at the probe (crash, unsubscribe). */
  close(probe: Probe): void {
    probe.closed = true;
  }

  /** A message's payload: sender and its per-sender sequence number. */
  nextMessage(sender: SimNode, topic: string): { payload: Buffer; key: string } {
    const seq = this.nextSeq.get(sender.id) ?? 0;
    this.nextSeq.set(sender.id, seq + 1);
    const key = `${sender.id}|${seq}`;
    const group = this.probes.find(p => p.group !== '' && topic.startsWith(p.prefix + '.'));
    const reachable = this.reachable;
    const at = this.now();
    const expectProbes = reachable
      ? this.probes.filter(
          p =>
            p.group === '' &&
            !p.closed &&
            p.since <= at &&
            topic.startsWith(p.prefix + '.') &&
            reachable(sender, p.node) &&
            knowsInterest(sender, p)
        )
      : [];
    const expectGroup =
      group && reachable && this.groupsHealthy && this.groupReady(group.group, at)
        ? group.group
        : undefined;
    this.sent.push({ key, sender, topic, at, expectProbes, expectGroup });
    this.sentCount++;
    return { payload: Buffer.from(key), key };
  }

  private groupReady(group: string, at: number): boolean {
    const members = this.probes.filter(p => p.group === group && !p.closed);
    return members.length > 0 && members.every(p => p.since <= at);
  }

  private onDelivery(probe: Probe, key: string): void {
    this.delivered++;
    const n = (probe.got.get(key) ?? 0) + 1;
    probe.got.set(key, n);
    if (n > 1) this.violation('duplicate');
    const bar = key.lastIndexOf('|');
    const sender = key.slice(0, bar);
    const seq = Number(key.slice(bar + 1));
    const last = probe.lastSeq.get(sender) ?? -1;
    if (n === 1 && seq < last) this.violation('order');
    if (seq > last) probe.lastSeq.set(sender, seq);
  }

  /** A request's outcome; a failure is a violation when the paths were healthy. */
  requestDone(ok: boolean, expected: boolean): void {
    this.requests++;
    if (ok) this.requestsOk++;
    else if (expected) this.violation('request_failed');
  }

  /** End of run (after a settle period): counts what expected messages never arrived. */
  finish(): void {
    for (const s of this.sent) {
      for (const p of s.expectProbes) {
        if (p.got.has(s.key)) continue;
        this.violation('lost');
        if (this.lostSamples.length < 10) {
          this.lostSamples.push(`${s.key} ${s.topic} at ${s.at.toFixed(1)} -> ${p.node.id}`);
        }
      }
      const members = this.probes.filter(p => p.group !== '' && s.topic.startsWith(p.prefix + '.'));
      let groupCount = 0;
      for (const m of members) groupCount += m.got.get(s.key) ?? 0;
      if (groupCount > 1) this.violation('group_multiple');
      if (s.expectGroup !== undefined && groupCount === 0) this.violation('group_lost');
    }
  }

  summary(): Record<string, number> {
    const out: Record<string, number> = {
      sent: this.sentCount,
      delivered: this.delivered,
      requests: this.requests,
      requests_ok: this.requestsOk,
      violations: this.totalViolations,
    };
    for (const [k, v] of this.violations) out[`violations.${k}`] = v;
    return out;
  }
}
