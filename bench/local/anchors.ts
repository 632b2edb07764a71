/**
 * The anchors of the local benchmark: a bare grpc-js echo server (the floor for any Node
 * gRPC front end) and Debian's nats-server with the npm `nats` client.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { Worker, startServer, stopProcess, freeTcpPort, tcpAccepts } from '../common/proc';
import type { LatencyResult, ThroughputResult } from '../common/load';
import type { CpuLatencyResult } from '../common/cpu';
import type { Scenario, System, Timing } from './scenario';
import { MAX_OPS, checkErrors, cpuFigure, runPubSub } from './scenario';

const script = (name: string): string => join(__dirname, name);

export class GrpcFloor implements System {
  readonly name = 'grpc_floor';
  private _server: Worker | undefined;
  private _client: Worker | undefined;

  async start(): Promise<void> {
    this._server = await Worker.start({ name: 'floor-server', script: script('floor-server.js') });
    const { port } = await this._server.call<{ port: number }>('listen');
    this._client = await Worker.start({ name: 'floor-client', script: script('floor-client.js') });
    await this._client.call('connect', { port });
  }

  scenarios(): Scenario[] {
    const c = (): Worker => this._client!;
    return [
      {
        name: 'grpc_floor.unary_latency',
        run: async (t: Timing) => {
          const r = await c().call<CpuLatencyResult>('unaryLatency', {
            size: 128,
            ...t,
            maxOps: MAX_OPS,
            cpuPids: [this._server!.pid!],
          });
          checkErrors('grpc_floor.unary_latency', r);
          return {
            'grpc_floor.unary_p50_us': r.p50_us,
            'grpc_floor.unary_p99_us': r.p99_us,
            // the server's CPU (/proc) over the measured window, per call
            ...cpuFigure('grpc_floor.server_cpu_us_per_call', r),
          };
        },
      },
      {
        name: 'grpc_floor.unary_rps_64',
        run: async (t: Timing) => {
          const r = await c().call<ThroughputResult>('unaryThroughput', {
            size: 128,
            concurrency: 64,
            ...t,
            maxOps: MAX_OPS,
          });
          checkErrors('grpc_floor.unary_rps_64', r);
          return { 'grpc_floor.unary_rps_64': r.rate };
        },
      },
      {
        name: 'grpc_floor.stream_mps_128',
        run: async (t: Timing) => {
          const r = await c().call<{ rate: number }>('streamRate', {
            size: 128,
            ...t,
            maxOps: MAX_OPS * 4,
          });
          return { 'grpc_floor.stream_mps_128': r.rate };
        },
      },
    ];
  }

  async stop(): Promise<void> {
    await this._client?.stop();
    await this._server?.stop();
  }
}

/** Where Debian's nats-server is: /usr/sbin/nats-server or on PATH. */
export function findNatsServer(): string {
  if (existsSync('/usr/sbin/nats-server')) return '/usr/sbin/nats-server';
  try {
    return execFileSync('which', ['nats-server'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('nats-server not found: install the Debian package (scripts/apt-deps.sh)');
  }
}

export class Nats implements System {
  readonly name = 'nats';
  private _server: ChildProcess | undefined;
  private _requester: Worker | undefined;
  private _responder: Worker | undefined;
  private _pub: Worker | undefined;
  private _sub: Worker | undefined;
  private _port = 0;

  /** The server's client port (after start), e.g. for a loss rule on its traffic. */
  get port(): number {
    return this._port;
  }

  async start(): Promise<void> {
    const port = await freeTcpPort();
    this._port = port;
    const srv = await startServer({
      name: 'nats-server',
      command: findNatsServer(),
      args: ['-a', '127.0.0.1', '-p', String(port)],
      ready: () => tcpAccepts('127.0.0.1', port),
    });
    this._server = srv.child;
    const start = async (name: string): Promise<Worker> => {
      const w = await Worker.start({ name, script: script('nats-client.js') });
      await w.call('connect', { port });
      return w;
    };
    [this._requester, this._responder, this._pub, this._sub] = await Promise.all([
      start('nats-requester'),
      start('nats-responder'),
      start('nats-publisher'),
      start('nats-subscriber'),
    ]);
    await this._responder.call('respond', { subject: 'bench.req' });
  }

  scenarios(): Scenario[] {
    const pubsub = (size: number, key: string, window: number, batch: number): Scenario => ({
      name: `nats.${key}`,
      run: async (t: Timing) => {
        const r = await runPubSub(
          this._pub!,
          this._sub!,
          {
            subject: `bench.ps.${size}`,
            size,
            maxBatch: 1,
            bufferSize: 0,
            window,
            batch,
            inFlight: 4,
          },
          t
        );
        return { [`nats.${key}`]: r.rate };
      },
    });
    return [
      {
        name: 'nats.request_latency',
        run: async (t: Timing) => {
          const r = await this._requester!.call<LatencyResult>('requestLatency', {
            subject: 'bench.req',
            size: 128,
            ...t,
            maxOps: MAX_OPS,
          });
          checkErrors('nats.request_latency', r);
          return { 'nats.request_p50_us': r.p50_us, 'nats.request_p99_us': r.p99_us };
        },
      },
      {
        name: 'nats.request_rps_64',
        run: async (t: Timing) => {
          const r = await this._requester!.call<ThroughputResult>('requestThroughput', {
            subject: 'bench.req',
            size: 128,
            concurrency: 64,
            ...t,
            maxOps: MAX_OPS,
          });
          checkErrors('nats.request_rps_64', r);
          return { 'nats.request_rps_64': r.rate };
        },
      },
      pubsub(128, 'pubsub_mps_128', 65_536, 1_024),
      pubsub(16_384, 'pubsub_mps_16k', 2_048, 64),
    ];
  }

  async stop(): Promise<void> {
    await Promise.all([this._requester, this._responder, this._pub, this._sub].map(w => w?.stop()));
    if (this._server) await stopProcess(this._server);
  }
}
