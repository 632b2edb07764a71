/**
 * N nodes of the shipped assembly (src/app, grpc: false) in one process over the seeded
 * VirtualNetwork (src/transport), all on one SimClock: nothing re-implemented, only the
 * datagram socket and the clock injected. Full mesh as `--peers` or a headless Service's
 * DNS gives it: every node knows every other. Crashes, restarts, partitions and joins are
 * done to the network and the apps, as they would happen to pods.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeApp, NodeConfig } from '../../src/app';
import { loadConfig, startNode } from '../../src/app';
import type { LinkConditions } from '../../src/transport';
import { VirtualNetwork, seededRandom } from '../../src/transport';
import type { InterestUpdate } from '../../src/dispatch';
import { SimClock } from './sim-clock';

/** The UDP port every simulated node listens on (each has its own virtual host). */
export const SIM_PEER_PORT = 7401;

export interface SimClusterInit {
  seed: number;
  /** Conditions of every link (loss, duplication, reordering, delay). */
  link: LinkConditions;
  /** Mux keepalive of the peer links. @default 1000 */
  peerPingIntervalMs?: number;
}

/** A simulated node: its app while it runs, and what the simulation counts for it. */
export interface SimNode {
  readonly id: string;
  readonly host: string;
  app: NodeApp | undefined;
  /** Interest updates this node received from peers (control messages). */
  interestUpdates: number;
  /** Called on every interest update received (convergence probes). */
  onInterest?: (fromPeer: string, update: InterestUpdate) => void;
}

let secretFile: string | undefined;

/** A cluster secret shared by every simulated node (virtual addresses are not loopback). */
function simClusterSecret(): string {
  if (!secretFile) {
    secretFile = join(mkdtempSync(join(tmpdir(), 'mw-sim-')), 'secret');
    writeFileSync(secretFile, 'the simulated cluster of this process\n');
  }
  return secretFile;
}

/** The virtual host of node number i: 10.(i>>16).(i>>8).(i&255)+1, unique up to 2^24. */
export function simHost(i: number): string {
  const n = i + 1;
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

function simConfig(id: string, host: string): NodeConfig {
  return {
    ...loadConfig({
      argv: [
        '--grpc-listen',
        '127.0.0.1:0',
        '--peer-listen',
        `${host}:${SIM_PEER_PORT}`,
        '--cluster-secret-file',
        simClusterSecret(),
      ],
      env: {},
    }),
    nodeId: id,
  };
}

export class SimCluster {
  readonly clock = new SimClock();
  readonly net: VirtualNetwork;
  readonly nodes: SimNode[] = [];
  private readonly init: SimClusterInit;

  constructor(init: SimClusterInit) {
    this.init = init;
    // Reconnect backoff jitter (src/dispatch/peer-sender.ts) draws from Math.random: seeded
    // here so a run replays. The simulator owns its process, so this is global on purpose.
    Math.random = seededRandom(init.seed ^ 0x9e3779b9);
    this.net = new VirtualNetwork({ seed: init.seed, clock: this.clock, defaults: init.link });
  }

  /** Adds a node (not started). */
  add(id = `n${this.nodes.length}`): SimNode {
    const node: SimNode = {
      id,
      host: simHost(this.nodes.length),
      app: undefined,
      interestUpdates: 0,
    };
    this.nodes.push(node);
    return node;
  }

  /** Starts a node's app and gives it every other node as a peer (as --peers would). */
  async start(node: SimNode): Promise<NodeApp> {
    const starting = startNode({
      config: simConfig(node.id, node.host),
      grpc: false,
      clock: this.clock,
      peerPingIntervalMs: this.init.peerPingIntervalMs,
      datagramSocket: () => this.net.socket(node.host, SIM_PEER_PORT),
    });
    // Starting awaits only promises and the lazy import: event-loop turns, no virtual time.
    const app = await starting;
    node.app = app;
    // Count interest updates and let probes watch them: the cluster's handler calls
    // node.onPeerInterest, so wrapping the instance method sees every one.
    const mesh = app.node;
    const apply = mesh.onPeerInterest.bind(mesh);
    mesh.onPeerInterest = (peerId, update) => {
      node.interestUpdates++;
      node.onInterest?.(peerId, update);
      apply(peerId, update);
    };
    for (const other of this.nodes) {
      if (other !== node) mesh.putPeer(other.id, [`${other.host}:${SIM_PEER_PORT}`]);
    }
    return app;
  }

  /** Running nodes. */
  running(): SimNode[] {
    return this.nodes.filter(n => n.app && n.app.node.state === 'running');
  }

  /** Whether every running node has a connected sender to every other running node. */
  meshConnected(among: SimNode[] = this.running()): boolean {
    for (const a of among) {
      const cluster = a.app?.node.cluster;
      if (!cluster) return false;
      for (const b of among) {
        if (a !== b && cluster.peerStatus(b.id).state !== 'connected') return false;
      }
    }
    return true;
  }

  /** Pairs (a -> b) among `among` not connected yet. */
  unconnectedPairs(among: SimNode[] = this.running()): number {
    let n = 0;
    for (const a of among) {
      const cluster = a.app?.node.cluster;
      for (const b of among) {
        if (a !== b && cluster?.peerStatus(b.id).state !== 'connected') n++;
      }
    }
    return n;
  }

  /**
   * Crashes a node: its packets stop both ways at once (no goodbye), then its objects are
   * released. Peers notice by keepalive timeout, as with a killed pod.
   */
  async crash(node: SimNode): Promise<void> {
    const app = node.app;
    if (!app) return;
    this.isolate(node, true);
    node.app = undefined;
    // The app is gone; closing it behind the cut releases its socket and timers.
    let closed = false;
    void app.shutdown().then(() => (closed = true));
    await this.clock.waitFor(() => closed, app.config.drainTimeoutMs + 5000);
    if (!closed) app.forceShutdown();
    this.isolate(node, false);
  }

  /** Cuts (or restores) every link to and from `node`. */
  isolate(node: SimNode, cut: boolean): void {
    for (const other of this.nodes) {
      if (other !== node) this.cut(node, other, cut);
    }
  }

  /** Cuts (or restores) both directions between two nodes. */
  cut(a: SimNode, b: SimNode, cut: boolean): void {
    const c: LinkConditions = cut ? { lossRate: 1 } : {};
    const ea = `${a.host}:${SIM_PEER_PORT}`;
    const eb = `${b.host}:${SIM_PEER_PORT}`;
    this.net.setLink(ea, eb, c);
    this.net.setLink(eb, ea, c);
  }

  /** Splits the cluster into two sides (or heals the split). */
  partition(sideA: SimNode[], sideB: SimNode[], cut: boolean): void {
    for (const a of sideA) for (const b of sideB) this.cut(a, b, cut);
  }

  /** Graceful stop of every running node (drain), bounded in virtual time. */
  async shutdown(): Promise<void> {
    const apps = this.nodes.flatMap(n => (n.app ? [n.app] : []));
    const all = Promise.all(apps.map(a => a.shutdown()));
    let done = false;
    void all.then(() => (done = true));
    await this.clock.waitFor(() => done, 60_000);
    if (!done) for (const a of apps) a.forceShutdown();
    this.net.stop();
    for (const n of this.nodes) n.app = undefined;
  }
}
