/**
 * A rolling restart of real `meshwire serve` processes under steady traffic, as a
 * StatefulSet update does it: one node at a time, SIGTERM, wait for the exit (the node
 * drains), start it again with the same id and ports, wait until health says SERVING,
 * re-subscribe the driver's subscribers there, and wait until it routes to and from every
 * peer before the next node. Used by `make chaos` (bench/chaos/run.ts) and by
 * test/integration/cluster/rolling-restart.test.ts.
 *
 * The traffic, all through @grpc/grpc-js clients of the driver:
 * - on every node, one subscriber on `chaos.send.<node>` and one responder in queue group
 *   `responders` on `chaos.req` and `chaos.probe.<node>`;
 * - Sends with ack DELIVERED, each numbered, entering one node and targeted at another
 *   (its subscriber must read every acknowledged one: ledger.ts says exactly what that
 *   promises);
 * - Requests by interest on `chaos.req` (any responder in the queue group answers).
 * Calls enter the nodes "in service" in turn, as a Kubernetes Service spreads them over
 * ready pods: a node leaves the rotation when it gets SIGTERM (the chart's preStop sleep
 * makes that hold) and comes back once it is SERVING. Calls already in flight on it are
 * left to its drain. Every loop and wait is bounded in count and time.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type {
  Client,
  ClientReadableStream,
  Metadata,
  ServiceClientConstructor,
  ServiceError,
} from '@grpc/grpc-js';
import { credentials } from '@grpc/grpc-js';
import type { DeliveryBatch, MeshwireClients } from '../../src/api';
import { createClients } from '../../src/api';
import { SUBSCRIPTION_ID_HEADER } from '../../src/api/messenger-service';
import { loadService } from '../common/grpc';
import { repoRoot } from '../common/results';
import { seededRandom } from '../../src/transport';
import type { CallRecord, ChurnSummary, RestartRecord } from './ledger';
import { ChurnLedger, STATUS_OK } from './ledger';

export interface ChurnNode {
  id: string;
  grpcPort: number;
  peerPort: number;
  metricsPort: number;
}

export interface ChurnOptions {
  nodes: readonly ChurnNode[];
  /** Indices into `nodes`, restarted in this order. */
  restartOrder: readonly number[];
  /** One Send and one Request are started every tick. */
  tickMs: number;
  /** At most this many calls in flight (a tick with more skips its calls). */
  maxInFlight: number;
  /** Upper bound on the calls started, whatever the duration. */
  maxCalls: number;
  /** Deadline of every Send and Request (also the Request's timeout_ms). */
  callDeadlineMs: number;
  /** A call that ends later than its deadline plus this is hung. */
  hangSlackMs: number;
  /** Steady traffic before the first restart and after each re-convergence. */
  settleMs: number;
  /** `--drain-timeout-ms` of the nodes. */
  drainTimeoutMs: number;
  /** Bound on each wait (start, exit, re-convergence). */
  waitMs: number;
  /** Responders answer `chaos.req` after a random delay below this (0: at once). */
  maxReplyDelayMs: number;
  /** Seeds the choice of entry and target nodes and the reply delays. */
  seed: number;
  /** Extra flags for every node (e.g. --log-level). */
  extraFlags?: readonly string[];
  /** Flags for one node only (e.g. its own cluster secret file). */
  nodeFlags?: (node: ChurnNode) => readonly string[];
  /** Called once every node is up, before the traffic (the chaos run installs the loss). */
  beforeTraffic?: () => void;
  /**
   * Runs under traffic after the first settle, before the restarts (e.g. a cluster secret
   * rotation, test/integration/cluster/secret-rotation.test.ts); then traffic settles again.
   */
  duringTraffic?: (ctx: ChurnContext) => Promise<void>;
  log: (msg: string) => void;
}

/** What duringTraffic can do to the running nodes. */
export interface ChurnContext {
  /** Sends a signal to node `i`'s process (e.g. SIGHUP). */
  signal(i: number, signal: NodeJS.Signals): void;
  /** Node `i`'s output so far (its last 4000 characters). */
  output(i: number): string;
  /** How many calls were started so far. */
  calls(): number;
}

export interface ChurnResult {
  summary: ChurnSummary;
  /** Stream ends of the driver's subscriptions by status code, e.g. { "0": 10 }. */
  subscriptionEnds: Record<string, number>;
  /** Node processes that exited without being asked to (crashes). */
  nodeCrashes: number;
  durationMs: number;
}

const CLI = (): string => join(repoRoot(), 'dist', 'src', 'cli', 'main.js');

/** Channel options: reconnect quickly to a restarted node (grpc-js's default backoff starts at 1 s and grows to 120 s). */
const CHANNEL_OPTIONS = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1000,
};

const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms));

type Method = (...args: unknown[]) => unknown;
function method(client: Client, name: string): Method {
  // Generated grpc-js clients expose RPCs as methods named after the proto.
  return (client as unknown as Record<string, Method>)[name].bind(client);
}

function unary<Res>(client: Client, name: string, req: unknown, deadline: number): Promise<Res> {
  return new Promise((resolve, reject) => {
    method(client, name)(req, { deadline }, (err: ServiceError | null, res: Res) =>
      err ? reject(err) : resolve(res)
    );
  });
}

/** One `meshwire serve` process and the driver's clients and subscriptions on it. */
class NodeSlot {
  proc: ChildProcess | undefined;
  clients: MeshwireClients;
  health: Client;
  inService = false;
  /** Exits the driver did not ask for (a crash): must stay 0. */
  unexpectedExits = 0;
  private _streams: ClientReadableStream<DeliveryBatch>[] = [];
  private _outputTail = '';
  /** Set while the driver stops this node (an exit then is expected). */
  private _terminating = false;

  constructor(
    readonly node: ChurnNode,
    private readonly _peersFlag: string,
    private readonly _opts: ChurnOptions,
    private readonly _healthCtor: ServiceClientConstructor
  ) {
    this.clients = createClients(this.address, { options: CHANNEL_OPTIONS });
    this.health = this._newHealthClient();
  }

  get address(): string {
    return `127.0.0.1:${this.node.grpcPort}`;
  }

  private _newHealthClient(): Client {
    // The messenger's channel: SERVING then also means the driver's calls can go out on it.
    return new this._healthCtor(this.address, credentials.createInsecure(), {
      ...CHANNEL_OPTIONS,
      channelOverride: this.clients.messenger.getChannel(),
    });
  }

  spawn(): void {
    const n = this.node;
    const proc = spawn(
      process.execPath,
      [
        CLI(),
        'serve',
        '--node-id',
        n.id,
        '--grpc-listen',
        this.address,
        '--peer-listen',
        `127.0.0.1:${n.peerPort}`,
        '--metrics-listen',
        `127.0.0.1:${n.metricsPort}`,
        '--peers',
        this._peersFlag,
        '--drain-timeout-ms',
        String(this._opts.drainTimeoutMs),
        ...(this._opts.extraFlags ?? ['--log-level', 'warn']),
        ...(this._opts.nodeFlags?.(n) ?? []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] }
    );
    const keep = (b: Buffer): void => {
      this._outputTail = (this._outputTail + b.toString()).slice(-4000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    // A driver that dies must not leave its nodes behind.
    const killOnExit = (): void => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    };
    process.on('exit', killOnExit);
    proc.once('exit', (code, signal) => {
      process.off('exit', killOnExit);
      if (!this._terminating) {
        this.unexpectedExits++;
        this._opts.log(
          `${n.id} exited unexpectedly (code ${code}, signal ${signal}): ${this._outputTail.slice(-3000)}`
        );
      }
    });
    this._terminating = false;
    this.proc = proc;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  output(): string {
    return this._outputTail;
  }

  /** Polls grpc.health.v1 Check until SERVING (bounded). */
  async waitServing(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (let i = 0; Date.now() < until; i++) {
      if (!this.running) throw new Error(`${this.node.id} exited: ${this.output().slice(-1500)}`);
      try {
        const res = await unary<{ status: string }>(
          this.health,
          'Check',
          { service: '' },
          Date.now() + 1000
        );
        if (res.status === 'SERVING') return;
      } catch {
        // not listening yet
      }
      await sleep(Math.min(200, 20 * (i + 1)));
    }
    throw new Error(
      `${this.node.id} not SERVING after ${timeoutMs} ms: ${this.output().slice(-1500)}`
    );
  }

  /** SIGTERM, then waits for the exit; SIGKILL after `timeoutMs`. Resolves with the exit code. */
  async terminate(timeoutMs: number): Promise<number | null> {
    const proc = this.proc;
    if (!proc || !this.running) return proc?.exitCode ?? null;
    const exited = new Promise<number | null>(resolve => proc.once('exit', code => resolve(code)));
    this._terminating = true;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }

  /**
   * Opens a Subscribe and resolves once its response headers say it is live (bounded).
   * `onBatch` sees every batch; `onEnd` the status the stream ended with.
   */
  subscribe(
    req: Record<string, unknown>,
    onBatch: (b: DeliveryBatch) => void,
    onEnd: (code: number) => void,
    timeoutMs: number
  ): Promise<void> {
    // waitForReady: a channel still in reconnect backoff from the restart waits, not fails.
    const stream = method(this.clients.messenger, 'Subscribe')(req, {
      waitForReady: true,
    }) as ClientReadableStream<DeliveryBatch>;
    this._streams.push(stream);
    stream.on('data', onBatch);
    let ended = false;
    const end = (code: number): void => {
      if (ended) return;
      ended = true;
      this._streams = this._streams.filter(s => s !== stream);
      onEnd(code);
    };
    stream.on('error', (e: ServiceError) => end(e.code));
    stream.on('status', (s: { code: number }) => end(s.code));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        stream.cancel();
        reject(new Error(`${this.node.id}: no Subscribe headers within ${timeoutMs} ms`));
      }, timeoutMs);
      stream.on('metadata', (md: Metadata) => {
        if (md.get(SUBSCRIPTION_ID_HEADER).length === 0) return;
        clearTimeout(timer);
        resolve();
      });
      stream.on('status', (st: { code: number; details: string }) => {
        clearTimeout(timer);
        reject(
          new Error(`${this.node.id}: Subscribe ended before its headers: ${st.code} ${st.details}`)
        );
      });
    });
  }

  cancelStreams(): void {
    for (const s of this._streams) s.cancel();
    this._streams = [];
  }

  close(): void {
    this.cancelStreams();
    this.clients.close();
    this.health.close();
  }
}

/** Runs the whole rolling restart and returns the books' summary. Cleans up on failure too. */
export async function runChurn(opts: ChurnOptions): Promise<ChurnResult> {
  const t0 = Date.now();
  const ledger = new ChurnLedger();
  const random = seededRandom(opts.seed);
  const peersFlag = opts.nodes.map(n => `${n.id}=127.0.0.1:${n.peerPort}`).join(',');
  const healthCtor = loadService(
    join(repoRoot(), 'proto', 'grpc', 'health', 'v1', 'health.proto'),
    'grpc.health.v1.Health'
  ).ctor;
  const slots = opts.nodes.map(n => new NodeSlot(n, peersFlag, opts, healthCtor));
  const subscriptionEnds: Record<string, number> = {};
  let trafficOn = false;
  let respondErrors = 0;

  /** The driver's subscriber and responder on slot `i` (again after each restart). */
  const subscribeOn = async (i: number): Promise<void> => {
    const slot = slots[i]!;
    const id = slot.node.id;
    const onEnd = (code: number): void => {
      subscriptionEnds[String(code)] = (subscriptionEnds[String(code)] ?? 0) + 1;
    };
    await slot.subscribe(
      { topics: [`chaos.send.${id}`], maxBatch: 64 },
      b => {
        ledger.droppedReported(id, b.dropped);
        for (const d of b.deliveries) ledger.receive(id, Number(d.message.payload.toString()));
      },
      onEnd,
      opts.waitMs
    );
    await slot.subscribe(
      { topics: ['chaos.req', `chaos.probe.${id}`], queueGroup: 'responders', maxBatch: 64 },
      b => {
        for (const d of b.deliveries) {
          const respond = (): void => {
            unary(
              slot.clients.messenger,
              'Respond',
              { replyTo: d.replyTo, message: { payload: d.message.payload } },
              Date.now() + opts.callDeadlineMs
            ).catch(() => respondErrors++);
          };
          // Slow replies keep requests in flight when a node drains (probes answer at once).
          const delayMs =
            d.message.topic === 'chaos.req' ? Math.floor(random() * opts.maxReplyDelayMs) : 0;
          if (delayMs > 0) setTimeout(respond, delayMs);
          else respond();
        }
      },
      onEnd,
      opts.waitMs
    );
  };

  /**
   * By-interest probes from `i` to every other node's responder and back; resolves with
   * what failed ('' when every probe was answered).
   */
  const routesBothWays = async (i: number): Promise<string> => {
    const probes: Promise<string>[] = [];
    for (let j = 0; j < slots.length; j++) {
      if (j === i) continue;
      const req = (from: number, to: number): Promise<string> =>
        unary(
          slots[from]!.clients.messenger,
          'Request',
          {
            message: { topic: `chaos.probe.${slots[to]!.node.id}`, payload: Buffer.from('probe') },
            timeoutMs: 1000,
          },
          Date.now() + 1000
        ).then(
          () => '',
          (e: ServiceError) => `${slots[from]!.node.id}->${slots[to]!.node.id}: ${e.message}`
        );
      probes.push(req(i, j), req(j, i));
    }
    return (await Promise.all(probes)).filter(Boolean).join('; ');
  };

  /** Every node's ListPeers, for an error message. */
  const peerStates = async (): Promise<string> => {
    const lists = await Promise.all(
      slots.map(s =>
        unary<{ peers: Array<{ id: string; state: string }> }>(
          s.clients.peers,
          'ListPeers',
          {},
          Date.now() + 2000
        ).then(
          r => `${s.node.id}: ${r.peers.map(p => `${p.id}=${p.state}`).join(',')}`,
          (e: ServiceError) => `${s.node.id}: ${e.message}`
        )
      )
    );
    return lists.join(' | ');
  };

  /** Waits (bounded) until `i` routes both ways; throws with what failed. */
  const waitConverged = async (i: number): Promise<void> => {
    const until = Date.now() + opts.waitMs;
    for (;;) {
      const failed = await routesBothWays(i);
      if (failed === '') return;
      if (Date.now() > until) {
        throw new Error(
          `${slots[i]!.node.id}: no routes both ways after ${opts.waitMs} ms: ${failed}; peers: ${await peerStates()}; its output: ${slots[i]!.output().slice(-1500)}`
        );
      }
      await sleep(50);
    }
  };

  let seq = 0;
  /** A node in service, as a Service picks a ready pod. */
  const serviceEntry = (): NodeSlot | undefined => {
    const live = slots.filter(s => s.inService);
    return live.length === 0 ? undefined : live[Math.floor(random() * live.length)];
  };
  /** Any node, in service or not: a client whose channel stays on one pod. */
  const pinnedEntry = (): NodeSlot => slots[Math.floor(random() * slots.length)]!;

  const startSend = (sender: NodeSlot, pinned: boolean): void => {
    const others = slots.filter(s => s !== sender);
    const target = others[Math.floor(random() * others.length)]!;
    const n = ++seq;
    const deadline = Date.now() + opts.callDeadlineMs;
    const rec = ledger.begin({
      kind: 'send',
      seq: n,
      entry: sender.node.id,
      pinned,
      target: target.node.id,
      startMs: Date.now(),
      deadlineMs: deadline,
    });
    unary<{ delivered: number }>(
      sender.clients.messenger,
      'Send',
      {
        target: { peerId: target.node.id },
        message: { topic: `chaos.send.${target.node.id}`, payload: Buffer.from(String(n)) },
        ack: 'DELIVERED',
      },
      deadline
    ).then(
      res => ledger.end(rec, Date.now(), STATUS_OK, { delivered: res.delivered }),
      (e: ServiceError) => ledger.end(rec, Date.now(), e.code)
    );
  };

  const startRequest = (requester: NodeSlot, pinned: boolean): void => {
    const n = ++seq;
    const deadline = Date.now() + opts.callDeadlineMs;
    const rec: CallRecord = ledger.begin({
      kind: 'request',
      seq: n,
      entry: requester.node.id,
      pinned,
      startMs: Date.now(),
      deadlineMs: deadline,
    });
    const payload = `r${n}`;
    unary<{ reply: { payload: Buffer } }>(
      requester.clients.messenger,
      'Request',
      {
        message: { topic: 'chaos.req', payload: Buffer.from(payload) },
        timeoutMs: opts.callDeadlineMs,
      },
      deadline
    ).then(
      res =>
        ledger.end(rec, Date.now(), STATUS_OK, {
          replyMatches: res.reply.payload.toString() === payload,
        }),
      (e: ServiceError) => ledger.end(rec, Date.now(), e.code)
    );
  };

  /** One tick: a Send and a Request through the Service, and one of each pinned to a node. */
  const startCalls = (): void => {
    if (ledger.calls.length + 4 > opts.maxCalls || ledger.inFlight() >= opts.maxInFlight) return;
    const viaService = serviceEntry();
    if (viaService) {
      startSend(viaService, false);
      startRequest(viaService, false);
    }
    const pinned = pinnedEntry();
    startSend(pinned, true);
    startRequest(pinned, true);
  };
  const traffic = async (): Promise<void> => {
    while (trafficOn && ledger.calls.length + 4 <= opts.maxCalls) {
      startCalls();
      await sleep(opts.tickMs);
    }
  };

  let trafficDone: Promise<void> = Promise.resolve();
  try {
    try {
      opts.log(`starting ${slots.length} nodes`);
      for (const s of slots) s.spawn();
      await Promise.all(slots.map(s => s.waitServing(opts.waitMs)));
      for (let i = 0; i < slots.length; i++) await subscribeOn(i);
      for (let i = 0; i < slots.length; i++) await waitConverged(i);
      for (const s of slots) s.inService = true;
      opts.beforeTraffic?.();
      opts.log('cluster up; traffic starts');
      trafficOn = true;
      trafficDone = traffic();
      await sleep(opts.settleMs);
      if (opts.duringTraffic) {
        await opts.duringTraffic({
          signal: (i, sig) => slots[i]!.proc?.kill(sig),
          output: i => slots[i]!.output(),
          calls: () => ledger.calls.length,
        });
        await sleep(opts.settleMs);
      }
      for (const i of opts.restartOrder) {
        const slot = slots[i]!;
        const rec: RestartRecord = { node: slot.node.id, termMs: Date.now() };
        ledger.restarts.push(rec);
        slot.inService = false;
        rec.exitCode = await slot.terminate(opts.drainTimeoutMs + opts.waitMs);
        rec.exitMs = Date.now();
        slot.cancelStreams();
        slot.spawn();
        await slot.waitServing(opts.waitMs);
        rec.servingMs = Date.now();
        await subscribeOn(i);
        await waitConverged(i);
        rec.convergedMs = Date.now();
        slot.inService = true;
        opts.log(
          `restarted ${slot.node.id}: exit ${rec.exitCode} after ${rec.exitMs - rec.termMs} ms, ` +
            `SERVING ${rec.servingMs - rec.exitMs} ms later, routes both ways ` +
            `${rec.convergedMs - rec.servingMs} ms after that; ${ledger.calls.length} calls so far`
        );
        await sleep(opts.settleMs);
      }
    } finally {
      trafficOn = false;
      await trafficDone;
      // Every call ends by its deadline (+ slack); the ones that do not are the hung ones.
      const waitUntil = Date.now() + opts.callDeadlineMs + opts.hangSlackMs + 1000;
      while (ledger.inFlight() > 0 && Date.now() < waitUntil) await sleep(50);
    }
    const summaryAt = Date.now();
    // Deliveries of acknowledged sends are already in the subscribers' streams: give them a
    // bounded moment to be read.
    const readUntil = Date.now() + 2000;
    while (Date.now() < readUntil && ledger.summary(Date.now(), opts.hangSlackMs).acked_lost > 0) {
      await sleep(100);
    }
    const summary = ledger.summary(summaryAt, opts.hangSlackMs);
    if (respondErrors > 0) summary.examples.push(`${respondErrors} Respond calls failed`);
    return {
      summary,
      subscriptionEnds,
      nodeCrashes: slots.reduce((n, sl) => n + sl.unexpectedExits, 0),
      durationMs: Date.now() - t0,
    };
  } finally {
    for (const s of slots) s.close();
    await Promise.all(slots.map(s => s.terminate(opts.drainTimeoutMs + opts.waitMs)));
  }
}
