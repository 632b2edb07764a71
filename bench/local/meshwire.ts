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
import type { LatencyResult, ThroughputResult } from '../common/load';
import { repoRoot } from '../common/results';
import { busyIdleMs, formatHotSpots, hotSpots, readNewestProfile } from '../common/cpuprofile';
import type { Scenario, System, Timing } from './scenario';
import { MAX_OPS, checkErrors, runPubSub } from './scenario';

const script = (name: string): string => join(__dirname, name);

/** The node's CLI entry point (compiled). */
export function nodeMain(): string {
  return join(repoRoot(), 'dist', 'src', 'cli', 'main.js');
}

export interface MeshwireInit {
  /** Extra `node` flags for the server process (e.g. --cpu-prof). */
  execArgv?: string[];
  /** Extra `node` flags for each client process, given the client's role. */
  clientExecArgv?: (role: string) => string[];
}

export class Meshwire implements System {
  readonly name = 'meshwire';
  private _node: ChildProcess | undefined;
  private _output: () => string = () => '';
  private _requester: Worker | undefined;
  private _responder: Worker | undefined;
  private _pub: Worker | undefined;
  private _sub: Worker | undefined;

  constructor(private readonly _init: MeshwireInit = {}) {}

  async start(): Promise<void> {
    const main = nodeMain();
    if (!existsSync(main)) throw new Error(`${main} missing: run make build first`);
    const [grpcPort, metricsPort, peerPort] = await Promise.all([
      freeTcpPort(),
      freeTcpPort(),
      freeUdpPort(),
    ]);
    const srv = await startServer({
      name: 'meshwire',
      command: process.execPath,
      args: [
        ...(this._init.execArgv ?? []),
        main,
        'serve',
        '--grpc-listen',
        `127.0.0.1:${grpcPort}`,
        '--peer-listen',
        `127.0.0.1:${peerPort}`,
        '--metrics-listen',
        `127.0.0.1:${metricsPort}`,
        '--node-id',
        'bench',
      ],
      env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: '' },
      ready: () => tcpAccepts('127.0.0.1', grpcPort),
    });
    this._node = srv.child;
    this._output = srv.output;
    const start = async (name: string): Promise<Worker> => {
      const w = await Worker.start({
        name,
        script: script('meshwire-client.js'),
        execArgv: this._init.clientExecArgv?.(name) ?? [],
      });
      await w.call('connect', { port: grpcPort });
      return w;
    };
    [this._requester, this._responder, this._pub, this._sub] = await Promise.all([
      start('meshwire-requester'),
      start('meshwire-responder'),
      start('meshwire-publisher'),
      start('meshwire-subscriber'),
    ]);
    // Sequential requests answered by unary Respond; pipelined ones by RespondStream.
    await this._responder.call('respond', { subject: 'bench.req', mode: 'unary', maxBatch: 1 });
    await this._responder.call('respond', { subject: 'bench.rps', mode: 'stream', maxBatch: 64 });
  }

  requestScenarios(): Scenario[] {
    return [
      {
        name: 'meshwire.request_latency',
        run: async (t: Timing) => {
          const r = await this._requester!.call<LatencyResult>('requestLatency', {
            subject: 'bench.req',
            size: 128,
            ...t,
            maxOps: MAX_OPS,
          });
          checkErrors('meshwire.request_latency', r);
          return { 'meshwire.request_p50_us': r.p50_us, 'meshwire.request_p99_us': r.p99_us };
        },
      },
      {
        name: 'meshwire.request_rps_64',
        run: async (t: Timing) => {
          const r = await this._requester!.call<ThroughputResult>('requestThroughput', {
            subject: 'bench.rps',
            size: 128,
            concurrency: 64,
            ...t,
            maxOps: MAX_OPS,
          });
          checkErrors('meshwire.request_rps_64', r);
          return { 'meshwire.request_rps_64': r.rate };
        },
      },
    ];
  }

  pubsubScenarios(): Scenario[] {
    const pubsub = (
      size: number,
      key: string,
      maxBatch: number,
      window: number,
      batch: number
    ): Scenario => ({
      name: `meshwire.${key}`,
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
          },
          t
        );
        return { [`meshwire.${key}`]: r.rate, [`meshwire.${key}_dropped`]: r.dropped };
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

  /** The node's recent output (for error messages). */
  output(): string {
    return this._output();
  }

  async stop(): Promise<void> {
    await Promise.all([this._requester, this._responder, this._pub, this._sub].map(w => w?.stop()));
    if (this._node) {
      const code = await stopProcess(this._node, 15_000);
      if (code !== 0) {
        console.error(`meshwire node exited with ${code}:\n${this._output().slice(-2000)}`);
      }
    }
  }
}

/**
 * Runs the meshwire scenarios with every process under `node --cpu-prof`: one node for the
 * pub/sub load, one for the request load. Prints the node's hot spots by self time, and
 * each client's busy time and top functions (to see which process is the bottleneck).
 */
export async function profileMeshwire(t: Timing): Promise<void> {
  const loads: [string, (m: Meshwire) => Scenario[]][] = [
    ['pub/sub (128 B then 16 KiB)', m => m.pubsubScenarios()],
    ['request (sequential then 64 in flight)', m => m.requestScenarios()],
  ];
  for (const [label, pick] of loads) {
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
