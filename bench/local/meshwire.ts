/**
 * meshwire in the local benchmark: one node (`node dist/src/cli/main.js serve`) on random
 * loopback ports, driven by client processes (meshwire-client.ts) over plain gRPC.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import {
  Worker,
  startServer,
  stopProcess,
  freeTcpPort,
  freeUdpPort,
  tcpAccepts,
} from '../common/proc';
import type { ThroughputResult } from '../common/load';
import type { CpuLatencyResult } from '../common/cpu';
import { repoRoot } from '../common/results';
import { runtimeFlags } from '../../src/common/runtime';
import { busyIdleMs, formatHotSpots, hotSpots, readNewestProfile } from '../common/cpuprofile';
import type { Scenario, System, Timing } from './scenario';
import { MAX_OPS, checkErrors, cpuFigure, runPubSub } from './scenario';
import type { Target } from './pubsub-parts';

const script = (name: string): string => join(__dirname, name);

/** The node's CLI entry point (compiled). */
export function nodeMain(): string {
  return join(repoRoot(), 'dist', 'src', 'cli', 'main.js');
}

export interface MeshwireInit {
  /** Extra `node` flags for the server process (e.g. --cpu-prof), or per node id. */
  execArgv?: string[] | ((nodeId: string) => string[]);
  /** Extra `node` flags for each client process, given the client's role. */
  clientExecArgv?: (role: string) => string[];
  /**
   * Two nodes instead of one (the cluster benchmark): `node-a` and `node-b` with static
   * peers; the requester and the publisher talk to node-a, the responder and the subscriber
   * to node-b, and every request and publish is sent to `target` across the nodes. Figures
   * are named `<prefix>.*` instead of `meshwire.*`.
   * @default undefined (one node)
   */
  crossNode?: { prefix: string; target: Target };
}

interface NodeProc {
  child: ChildProcess;
  output: () => string;
}

/** `udp_driver/aead_backend` each node's start-up log line gave, by `<system> <node id>`. */
const startedTransports = new Map<string, string>();

export class Meshwire implements System {
  readonly name: string;
  private readonly _nodes: NodeProc[] = [];
  private _peerPorts: number[] = [];
  private _requester: Worker | undefined;
  private _responder: Worker | undefined;
  private _pub: Worker | undefined;
  private _sub: Worker | undefined;

  constructor(private readonly _init: MeshwireInit = {}) {
    this.name = _init.crossNode?.prefix ?? 'meshwire';
  }

  /** The requester client process (after start), for tools driving their own load. */
  get requester(): Worker | undefined {
    return this._requester;
  }

  /**
   * `udp_driver/aead_backend` of every meshwire node started so far in this process (by
   * `<system> <node id>`), from their start-up log lines.
   */
  static transports(): Record<string, string> {
    return Object.fromEntries(startedTransports);
  }

  /** The nodes' UDP peer ports (after start). */
  get peerPorts(): readonly number[] {
    return this._peerPorts;
  }

  async start(): Promise<void> {
    const main = nodeMain();
    if (!existsSync(main)) throw new Error(`${main} missing: run make build first`);
    const ids = this._init.crossNode ? ['node-a', 'node-b'] : ['bench'];
    const ports = await Promise.all(
      ids.map(async () => {
        const [grpc, metrics, peer] = await Promise.all([
          freeTcpPort(),
          freeTcpPort(),
          freeUdpPort(),
        ]);
        return { grpc, metrics, peer };
      })
    );
    this._peerPorts = ports.map(p => p.peer);
    const peers = this._init.crossNode
      ? ['--peers', ids.map((id, i) => `${id}=127.0.0.1:${ports[i]!.peer}`).join(',')]
      : [];
    // Started side by side: the nodes find each other through the static peers.
    const startNode = async (id: string, i: number): Promise<void> => {
      const { grpc, metrics, peer } = ports[i]!;
      const srv = await startServer({
        name: `meshwire ${id}`,
        command: process.execPath,
        args: [
          ...(typeof this._init.execArgv === 'function'
            ? this._init.execArgv(id)
            : (this._init.execArgv ?? [])),
          main,
          'serve',
          '--grpc-listen',
          `127.0.0.1:${grpc}`,
          '--peer-listen',
          `127.0.0.1:${peer}`,
          '--metrics-listen',
          `127.0.0.1:${metrics}`,
          '--node-id',
          id,
          ...peers,
        ],
        env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: '' },
        ready: () => tcpAccepts('127.0.0.1', grpc),
        // Loading the node (grpc-js, OpenTelemetry) takes long on a busy shared host.
        readyTimeoutMs: 60_000,
      });
      this._nodes.push({ child: srv.child, output: srv.output });
      startedTransports.set(`${this.name} ${id}`, srv.transport() ?? 'unreported');
    };
    // allSettled: a node still starting when another fails is kept, so stop() ends it too.
    for (const r of await Promise.allSettled(ids.map(startNode))) {
      if (r.status === 'rejected') throw r.reason;
    }
    // One node: everyone on it. Two: requester and publisher on node-a, the rest on node-b.
    const portA = ports[0]!.grpc;
    const portB = ports[ports.length - 1]!.grpc;
    const start = async (role: string, port: number): Promise<Worker> => {
      const name = `${this.name}-${role}`;
      const w = await Worker.start({
        name,
        script: script('meshwire-client.js'),
        execArgv: [...runtimeFlags(), ...(this._init.clientExecArgv?.(`meshwire-${role}`) ?? [])],
      });
      await w.call('connect', { port });
      return w;
    };
    [this._requester, this._responder, this._pub, this._sub] = await Promise.all([
      start('requester', portA),
      start('responder', portB),
      start('publisher', portA),
      start('subscriber', portB),
    ]);
    // Sequential requests answered by unary Respond (bench.req) and by one RespondStream as
    // the CLI's reply-with does (bench.req.stream); pipelined ones by RespondStream.
    await this._responder.call('respond', { subject: 'bench.req', mode: 'unary', maxBatch: 1 });
    await this._responder.call('respond', {
      subject: 'bench.req.stream',
      mode: 'stream',
      maxBatch: 64,
    });
    await this._responder.call('respond', { subject: 'bench.rps', mode: 'stream', maxBatch: 64 });
    const target = this._init.crossNode?.target;
    if (target) {
      for (const subject of ['bench.req', 'bench.req.stream', 'bench.rps']) {
        await this._requester.call('waitRequest', { subject, target }, 15_000);
      }
    }
  }

  /** The node's pid, one node only (the CPU figures are of the one-node benchmark). */
  private _cpuPids(): number[] | undefined {
    if (this._init.crossNode) return undefined;
    const pid = this._nodes[0]?.child.pid;
    return pid === undefined ? undefined : [pid];
  }

  requestScenarios(): Scenario[] {
    const n = this.name;
    const target = this._init.crossNode?.target;
    const sequential = (
      scenario: string,
      subject: string,
      figure: string,
      cpu: string
    ): Scenario => ({
      name: `${n}.${scenario}`,
      run: async (t: Timing) => {
        const r = await this._requester!.call<CpuLatencyResult>('requestLatency', {
          subject,
          size: 128,
          ...t,
          maxOps: MAX_OPS,
          target,
          cpuPids: this._cpuPids(),
        });
        checkErrors(`${n}.${scenario}`, r);
        return {
          [`${n}.${figure}_p50_us`]: r.p50_us,
          [`${n}.${figure}_p99_us`]: r.p99_us,
          // the node's CPU (/proc) over the measured window, per request
          ...cpuFigure(`${n}.${cpu}`, r),
        };
      },
    });
    return [
      sequential(
        'request_latency',
        'bench.req',
        'request',
        'node_cpu_us_per_request_unary_respond'
      ),
      sequential(
        'request_stream_responder_latency',
        'bench.req.stream',
        'request_stream_responder',
        'node_cpu_us_per_request'
      ),
      {
        name: `${n}.request_rps_64`,
        run: async (t: Timing) => {
          const r = await this._requester!.call<ThroughputResult>('requestThroughput', {
            subject: 'bench.rps',
            size: 128,
            concurrency: 64,
            ...t,
            maxOps: MAX_OPS,
            target,
          });
          checkErrors(`${n}.request_rps_64`, r);
          return { [`${n}.request_rps_64`]: r.rate };
        },
      },
    ];
  }

  pubsubScenarios(): Scenario[] {
    const n = this.name;
    const pubsub = (
      size: number,
      key: string,
      maxBatch: number,
      window: number,
      batch: number
    ): Scenario => ({
      name: `${n}.${key}`,
      run: async (t: Timing) => {
        const r = await runPubSub(
          this._pub!,
          this._sub!,
          {
            subject: `bench.ps.${size}`,
            size,
            maxBatch,
            // As large as the publisher's credit window: the node never has to drop.
            bufferSize: window,
            window,
            batch,
            inFlight: 8,
            target: this._init.crossNode?.target,
          },
          t,
          this._nodes.map(p => p.child.pid).filter((pid): pid is number => pid !== undefined)
        );
        return {
          [`${n}.${key}`]: r.rate,
          [`${n}.${key}_dropped`]: r.dropped,
          // every node's CPU per message (both nodes for the cluster)
          ...(r.cpuUsPerMsg !== undefined && Number.isFinite(r.cpuUsPerMsg)
            ? { [`${n}.${key}_node_cpu_us_per_msg`]: r.cpuUsPerMsg }
            : {}),
        };
      },
    });
    return [
      pubsub(128, 'pubsub_mps_128', 256, 65_536, 256),
      pubsub(16_384, 'pubsub_mps_16k', 64, 2_048, 16),
    ];
  }

  scenarios(): Scenario[] {
    return [...this.requestScenarios(), ...this.pubsubScenarios()];
  }

  /** The nodes' recent output (for error messages). */
  output(): string {
    return this._nodes.map(n => n.output()).join('\n');
  }

  async stop(): Promise<void> {
    await Promise.all([this._requester, this._responder, this._pub, this._sub].map(w => w?.stop()));
    const codes = await Promise.all(this._nodes.map(n => stopProcess(n.child, 15_000)));
    for (const [i, code] of codes.entries()) {
      if (code !== 0) {
        console.error(
          `${this.name} node exited with ${code}:\n${this._nodes[i]!.output().slice(-2000)}`
        );
      }
    }
    this._nodes.length = 0;
  }
}

/**
 * Runs the meshwire scenarios with every process under `node --cpu-prof`: one node for the
 * pub/sub load, one for the request load. Prints the node's hot spots by self time, and
 * each client's busy time and top functions (to see which process is the bottleneck).
 * `only`: just the scenarios whose name contains it (e.g. pubsub_mps_128).
 */
export async function profileMeshwire(t: Timing, only?: string): Promise<void> {
  const wanted = (sc: Scenario): boolean => !only || sc.name.includes(only);
  const loads: [string, (m: Meshwire) => Scenario[]][] = [
    ['pub/sub (128 B then 16 KiB)', m => m.pubsubScenarios().filter(wanted)],
    ['request (sequential then 64 in flight)', m => m.requestScenarios().filter(wanted)],
  ];
  for (const [label, pick] of loads) {
    // --only: a load none of whose scenarios is wanted is not started at all.
    if (only && pick(new Meshwire()).length === 0) continue;
    const dir = mkdtempSync(join(tmpdir(), 'meshwire-prof-'));
    const prof = (sub: string): string[] => ['--cpu-prof', `--cpu-prof-dir=${join(dir, sub)}`];
    const m = new Meshwire({ execArgv: prof('node'), clientExecArgv: prof });
    const spawned = Date.now();
    await m.start();
    // Count only the loads (after each warm-up), not start-up or shutdown. The profile
    // starts a little after the spawn, so offsets from the spawn err on the late side.
    const loadFrom = Date.now() - spawned + t.warmupMs;
    let loadTo = loadFrom;
    try {
      for (const sc of pick(m)) {
        const figures = await sc.run(t);
        console.log(`${sc.name}: ${JSON.stringify(figures)}`);
      }
      loadTo = Date.now() - spawned;
    } finally {
      await m.stop();
    }
    const window = { fromMs: loadFrom, toMs: loadTo };
    const node = readNewestProfile(join(dir, 'node'));
    const b = busyIdleMs(node, window);
    console.log(
      `\nmeshwire node, ${label}, ${loadFrom}-${loadTo} ms after start: busy ${b.busyMs} ms, ` +
        `idle ${b.idleMs} ms (${dir})`
    );
    console.log(formatHotSpots(hotSpots(node, repoRoot(), 30, window)));
    for (const role of ['requester', 'responder', 'publisher', 'subscriber']) {
      const cdir = join(dir, `meshwire-${role}`);
      if (!existsSync(cdir)) continue;
      const p = readNewestProfile(cdir);
      const cb = busyIdleMs(p, window);
      console.log(`\nclient ${role}: busy ${cb.busyMs} ms, idle ${cb.idleMs} ms`);
      console.log(formatHotSpots(hotSpots(p, repoRoot(), 8, window)));
    }
    console.log('');
  }
}
