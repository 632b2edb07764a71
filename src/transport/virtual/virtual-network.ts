/**
 * A deterministic, seeded in-process network for tests (ours and users'): virtual
 * datagram sockets joined by links with loss (random and bursty, Gilbert-Elliott),
 * duplication, reordering, delay and jitter, corruption, an MTU and a bandwidth cap with
 * a bounded queue. Time comes from outside: either a Clock (timers fire deliveries, so a
 * RudpSocket can run on it) or a caller that steps `deliverUntil(t)` itself (the engine
 * simulations in the unit tests). After KCP's LatencySimulator and libp2p's message queue.
 */
import type { Clock, Timer } from '../../common';
import { DropCounter, heapPop, heapPush } from '../../common';
import type { DatagramSocket, RemoteInfo } from '../drivers/datagram-socket';

/** Knobs of one direction of a link. All optional; the default is a perfect link. */
export interface LinkConditions {
  /** Probability a datagram is lost (independent). @default 0 */
  lossRate?: number;
  /** Bursty loss (Gilbert-Elliott): enter the bad state with p `enter`, leave with `exit`; lose with `lossRate` while bad. */
  burst?: { enter: number; exit: number; lossRate: number };
  /** Probability a datagram is delivered twice. @default 0 */
  duplicateRate?: number;
  /** Probability a datagram is held back by `reorderDelayMs` extra. @default 0 */
  reorderRate?: number;
  /** @default 5 */
  reorderDelayMs?: number;
  /** One-way delay range [min, max] ms, uniform (jitter reorders too). @default [0.5, 0.5] */
  delayMs?: [number, number];
  /** Probability one random byte is flipped. @default 0 */
  corruptRate?: number;
  /** Datagrams larger than this are dropped. @default 65507 */
  mtu?: number;
  /** Bandwidth cap in bytes per ms (Infinity = none). @default Infinity */
  bandwidthBytesPerMs?: number;
  /** Queue in front of the bandwidth cap, bytes; tail drop beyond it. @default 64 KiB */
  queueBytes?: number;
}

export interface VirtualNetworkInit {
  seed: number;
  /** Drives deliveries with timers. Without it the owner calls deliverUntil(). */
  clock?: Clock;
  /** Conditions of every link unless set per link. */
  defaults?: LinkConditions;
}

export type NetworkDropReason = 'loss' | 'burst_loss' | 'mtu' | 'queue' | 'no_socket';

interface Link {
  c: Required<Omit<LinkConditions, 'burst'>> & { burst?: LinkConditions['burst'] };
  bad: boolean;
  busyUntil: number;
}

interface Event {
  at: number;
  seq: number;
  to: string;
  from: RemoteInfo;
  data: Buffer;
}

/** mulberry32: small, fast, seedable. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function fill(c: LinkConditions): Link['c'] {
  return {
    lossRate: c.lossRate ?? 0,
    burst: c.burst,
    duplicateRate: c.duplicateRate ?? 0,
    reorderRate: c.reorderRate ?? 0,
    reorderDelayMs: c.reorderDelayMs ?? 5,
    delayMs: c.delayMs ?? [0.5, 0.5],
    corruptRate: c.corruptRate ?? 0,
    mtu: c.mtu ?? 65507,
    bandwidthBytesPerMs: c.bandwidthBytesPerMs ?? Infinity,
    queueBytes: c.queueBytes ?? 64 * 1024,
  };
}

export class VirtualNetwork {
  readonly drops = new DropCounter<NetworkDropReason>();
  delivered = 0;
  sent = 0;
  private readonly rnd: () => number;
  private readonly sockets = new Map<string, VirtualSocket>();
  private readonly links = new Map<string, Link>();
  private readonly heap: Event[] = [];
  private seq = 0;
  private nextPort = 10000;
  private timer: Timer | null = null;
  private timerAt = Infinity;
  private current = 0;
  private readonly defaults: LinkConditions;

  constructor(private readonly init: VirtualNetworkInit) {
    this.rnd = seededRandom(init.seed);
    this.defaults = init.defaults ?? {};
  }

  /** Current network time. */
  now(): number {
    return this.init.clock ? this.init.clock.now() : this.current;
  }

  /** A new socket at `host` (port 0 = pick one). */
  socket(host = '10.0.0.1', port = 0): VirtualSocket {
    const p = port || this.nextPort++;
    const key = `${host}:${p}`;
    if (this.sockets.has(key)) throw new Error(`address in use: ${key}`);
    const s = new VirtualSocket(this, host, p);
    this.sockets.set(key, s);
    return s;
  }

  /** Sets the conditions of the link from `from` to `to` ("host:port" each, or "*"). */
  setLink(from: string, to: string, c: LinkConditions): void {
    this.links.set(`${from}>${to}`, {
      c: fill({ ...this.defaults, ...c }),
      bad: false,
      busyUntil: 0,
    });
  }

  /** Sets the default conditions for links created from now on, and resets existing ones. */
  setDefaults(c: LinkConditions): void {
    Object.assign(this.defaults, c);
    this.links.clear();
  }

  private link(from: string, to: string): Link {
    const key = `${from}>${to}`;
    let l = this.links.get(key);
    if (!l) {
      l = { c: fill(this.defaults), bad: false, busyUntil: 0 };
      this.links.set(key, l);
    }
    return l;
  }

  /** @internal */
  detach(s: VirtualSocket): void {
    this.sockets.delete(`${s.host}:${s.port}`);
  }

  /** @internal */
  transmit(from: VirtualSocket, to: string, data: Buffer): void {
    this.sent++;
    const now = this.now();
    const l = this.link(`${from.host}:${from.port}`, to);
    const c = l.c;
    if (data.length > c.mtu) {
      this.drops.add('mtu');
      return;
    }
    if (c.burst) {
      l.bad = l.bad ? this.rnd() >= c.burst.exit : this.rnd() < c.burst.enter;
      if (l.bad && this.rnd() < c.burst.lossRate) {
        this.drops.add('burst_loss');
        return;
      }
    }
    if (c.lossRate > 0 && this.rnd() < c.lossRate) {
      this.drops.add('loss');
      return;
    }
    let departs = now;
    if (c.bandwidthBytesPerMs !== Infinity) {
      const start = Math.max(now, l.busyUntil);
      if ((start - now) * c.bandwidthBytesPerMs + data.length > c.queueBytes) {
        this.drops.add('queue');
        return;
      }
      l.busyUntil = start + data.length / c.bandwidthBytesPerMs;
      departs = l.busyUntil;
    }
    const copies = c.duplicateRate > 0 && this.rnd() < c.duplicateRate ? 2 : 1;
    for (let k = 0; k < copies; k++) {
      // each delivery gets its own bytes, as from a real socket (receivers decrypt in place)
      let d = k === 0 ? data : Buffer.from(data);
      if (c.corruptRate > 0 && this.rnd() < c.corruptRate) {
        d = Buffer.from(data);
        const i = Math.floor(this.rnd() * d.length);
        d[i] ^= 1 + Math.floor(this.rnd() * 255);
      }
      const [lo, hi] = c.delayMs;
      let at = departs + lo + (hi - lo) * this.rnd();
      if (c.reorderRate > 0 && this.rnd() < c.reorderRate) at += c.reorderDelayMs;
      this.push({
        at,
        seq: this.seq++,
        to,
        from: { address: from.host, port: from.port },
        data: d,
      });
    }
  }

  private push(e: Event): void {
    heapPush(this.heap, e, less);
    this.arm();
  }

  private pop(): Event {
    return heapPop(this.heap, less);
  }

  /** Time of the next delivery (Infinity when idle). */
  nextEventTime(): number {
    return this.heap.length > 0 ? this.heap[0].at : Infinity;
  }

  /** Delivers every datagram due at or before `t` (manual mode). */
  deliverUntil(t: number): void {
    while (this.heap.length > 0 && this.heap[0].at <= t) {
      const e = this.pop();
      if (!this.init.clock) this.current = Math.max(this.current, e.at);
      const s = this.sockets.get(e.to);
      if (!s) {
        this.drops.add('no_socket');
        continue;
      }
      this.delivered++;
      s.deliver(e.data, e.from);
    }
    if (!this.init.clock) this.current = Math.max(this.current, t);
  }

  private arm(): void {
    const clock = this.init.clock;
    if (!clock) return;
    const next = this.nextEventTime();
    if (next >= this.timerAt && this.timer) return;
    this.timer?.cancel();
    this.timerAt = next;
    this.timer = clock.setTimer(Math.max(0, next - clock.now()), () => {
      this.timer = null;
      this.timerAt = Infinity;
      this.deliverUntil(clock.now());
      if (this.heap.length > 0) this.arm();
    });
  }

  /** Cancels the delivery timer (for test teardown). */
  stop(): void {
    this.timer?.cancel();
    this.timer = null;
    this.heap.length = 0;
  }
}

function less(a: Event, b: Event): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** A DatagramSocket on a VirtualNetwork. */
export class VirtualSocket implements DatagramSocket {
  readonly kind = 'virtual';
  private handler: ((msg: Buffer, from: RemoteInfo) => void) | null = null;
  private closed = false;

  constructor(
    private readonly net: VirtualNetwork,
    readonly host: string,
    readonly port: number
  ) {}

  send(parts: Buffer[], port: number, address: string): void {
    if (this.closed) return;
    const data = parts.length === 1 ? Buffer.from(parts[0]) : Buffer.concat(parts);
    this.net.transmit(this, `${address}:${port}`, data);
  }

  onMessage(handler: (msg: Buffer, from: RemoteInfo) => void): void {
    this.handler = handler;
  }

  /** @internal */
  deliver(data: Buffer, from: RemoteInfo): void {
    if (!this.closed && this.handler) this.handler(data, from);
  }

  address(): { host: string; port: number } {
    return { host: this.host, port: this.port };
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.net.detach(this);
    }
    return Promise.resolve();
  }
}

/** Two sockets joined by links with the same conditions both ways. */
export function createLossyPair(init: VirtualNetworkInit & LinkConditions): {
  net: VirtualNetwork;
  a: VirtualSocket;
  b: VirtualSocket;
} {
  const { seed, clock, defaults, ...conditions } = init;
  const net = new VirtualNetwork({ seed, clock, defaults: { ...defaults, ...conditions } });
  return { net, a: net.socket('10.0.0.1'), b: net.socket('10.0.0.2') };
}
