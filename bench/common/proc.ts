/**
 * Process plumbing for benchmarks: clients and servers each run in their own process.
 *
 * - `Worker.start(script)` forks a compiled bench script that calls `serveWorker(...)`;
 *   the parent drives it with `call(cmd, params)` (request/response over the IPC channel),
 *   `notify(cmd, params)` (no reply) and receives its `emitEvent(...)` through `onEvent`.
 * - `startServer(cmd, args, ready)` spawns any program (nats-server, a meshwire node) and
 *   waits until `ready()` holds; `stopProcess` ends it with SIGTERM, then SIGKILL.
 * Every wait is bounded in time.
 */
import { fork, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { createSocket } from 'node:dgram';
import { runtimeFlags } from '../../src/common/runtime';

type IpcIn = { id?: number; cmd: string; params?: unknown };
type IpcOut =
  | { ready: true }
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: string }
  | { event: string; data: unknown };

/** A handler in a worker: params in, a JSON-serialisable result out. */
export type Handler = (params: never) => unknown;

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  cmd: string;
}

export interface WorkerInit {
  /** Name in error messages and logs. */
  name: string;
  /** Absolute path of the compiled script. */
  script: string;
  args?: string[];
  execArgv?: string[];
  env?: NodeJS.ProcessEnv;
  /** Generous: on a loaded shared machine, loading grpc-js alone can take many seconds. @default 60000 */
  readyTimeoutMs?: number;
}

export class Worker {
  private readonly _pending = new Map<number, Pending>();
  private readonly _listeners = new Map<string, ((data: unknown) => void)[]>();
  private _nextId = 1;
  private _exited = false;
  private _stderrTail = '';

  private constructor(
    readonly name: string,
    private readonly _child: ChildProcess
  ) {
    _child.on('message', (m: IpcOut) => this._onMessage(m));
    _child.stderr?.on('data', (b: Buffer) => {
      this._stderrTail = (this._stderrTail + b.toString()).slice(-4000);
      process.stderr.write(`[${name}] ${b.toString()}`);
    });
    _child.on('exit', (code, signal) => {
      this._exited = true;
      const err = new Error(
        `${name} exited (code ${code}, signal ${signal}) ${this._stderrTail.trim().slice(-500)}`
      );
      for (const p of this._pending.values()) {
        clearTimeout(p.timer);
        p.reject(err);
      }
      this._pending.clear();
    });
  }

  get pid(): number | undefined {
    return this._child.pid;
  }

  static start(init: WorkerInit): Promise<Worker> {
    const child = fork(init.script, init.args ?? [], {
      // load generators and anchors run with the V8 tuning of a meshwire node (fair A/B)
      execArgv: init.execArgv ?? runtimeFlags(),
      env: init.env ?? process.env,
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    const w = new Worker(init.name, child);
    const timeoutMs = init.readyTimeoutMs ?? 60_000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${init.name} not ready after ${timeoutMs} ms`));
      }, timeoutMs);
      const onMsg = (m: IpcOut): void => {
        if ('ready' in m) {
          clearTimeout(timer);
          child.off('message', onMsg);
          child.off('exit', onExit);
          resolve(w);
        }
      };
      const onExit = (code: number | null): void => {
        clearTimeout(timer);
        reject(new Error(`${init.name} exited with code ${code} before it was ready`));
      };
      child.on('message', onMsg);
      child.on('exit', onExit);
    });
  }

  /** Calls `cmd` in the worker and resolves with its result; rejects on error or timeout. */
  call<T = unknown>(cmd: string, params: unknown = {}, timeoutMs = 60_000): Promise<T> {
    if (this._exited) return Promise.reject(new Error(`${this.name} has exited`));
    const id = this._nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new Error(`${this.name}: ${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this._pending.set(id, { resolve: v => resolve(v as T), reject, timer, cmd });
      this._child.send({ id, cmd, params } satisfies IpcIn);
    });
  }

  /** Sends `cmd` without waiting for an answer (e.g. flow-control credit). */
  notify(cmd: string, params: unknown = {}): void {
    if (!this._exited && this._child.connected) this._child.send({ cmd, params } satisfies IpcIn);
  }

  /** Listens to `emitEvent(name, data)` calls made by the worker. */
  onEvent(name: string, fn: (data: unknown) => void): () => void {
    const list = this._listeners.get(name) ?? [];
    list.push(fn);
    this._listeners.set(name, list);
    return () => {
      const l = this._listeners.get(name);
      if (l)
        this._listeners.set(
          name,
          l.filter(f => f !== fn)
        );
    };
  }

  /** Asks the worker to exit, then kills it after `timeoutMs`. */
  async stop(timeoutMs = 5_000): Promise<void> {
    if (this._exited) return;
    this.notify('exit');
    await waitExit(this._child, timeoutMs);
  }

  private _onMessage(m: IpcOut): void {
    if ('event' in m) {
      for (const fn of this._listeners.get(m.event) ?? []) fn(m.data);
      return;
    }
    if (!('id' in m)) return;
    const p = this._pending.get(m.id);
    if (!p) return;
    this._pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.ok) p.resolve(m.result);
    else p.reject(new Error(`${this.name}: ${p.cmd}: ${m.error}`));
  }
}

/**
 * Worker side: answers `call`s with `handlers[cmd](params)` (sync or async) and runs
 * `notifications[cmd](params)` for `notify`s. The `exit` notification runs `onExit` (bounded
 * to 3 s) and exits 0. Tells the parent it is ready.
 */
export function serveWorker(
  handlers: Record<string, (params: never) => unknown>,
  notifications: Record<string, (params: never) => void> = {},
  onExit: () => Promise<void> | void = () => undefined
): void {
  if (!process.send) throw new Error('serveWorker: not started with an IPC channel (use fork)');
  const send = (m: IpcOut): void => {
    if (process.connected) process.send!(m);
  };
  let exiting = false;
  const exit = (): void => {
    if (exiting) return;
    exiting = true;
    setTimeout(() => process.exit(0), 3_000).unref();
    Promise.resolve()
      .then(onExit)
      .catch(() => undefined)
      .finally(() => process.exit(0));
  };
  process.on('disconnect', exit);
  process.on('message', (m: IpcIn) => {
    if (m.cmd === 'exit') return exit();
    if (m.id === undefined) {
      const fn = notifications[m.cmd];
      if (fn) fn(m.params as never);
      return;
    }
    const id = m.id;
    const fn = handlers[m.cmd];
    if (!fn) {
      send({ id, ok: false, error: `unknown command ${m.cmd}` });
      return;
    }
    Promise.resolve()
      .then(() => fn(m.params as never))
      .then(
        result => send({ id, ok: true, result: result ?? null }),
        (e: unknown) =>
          send({ id, ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) })
      );
  });
  send({ ready: true });
}

/** Sends an event to the parent (worker side). */
export function emitEvent(event: string, data: unknown): void {
  if (process.send && process.connected) process.send({ event, data } satisfies IpcOut);
}

export interface ServerInit {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** Resolves true once the server answers; polled every 50 ms. */
  ready: () => Promise<boolean>;
  /** @default 20000 */
  readyTimeoutMs?: number;
  /** Print the server's stdout/stderr (otherwise only kept for error messages). */
  verbose?: boolean;
}

export interface ServerHandle {
  child: ChildProcess;
  /** The last few KiB of the server's output. */
  output(): string;
  /**
   * For a meshwire node: the UDP driver and AEAD backend its start-up log line ("peer
   * transport bound") says it uses, e.g. `batch/openssl`; undefined for anything else.
   */
  transport(): string | undefined;
}

/**
 * `udp_driver/aead_backend` from a meshwire node's Prometheus endpoint (the
 * meshwire_transport_info gauge): for nodes whose log level hides the start-up line.
 */
export async function transportFromMetrics(port: number): Promise<string | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, {
      signal: AbortSignal.timeout(5_000),
    });
    const text = await res.text();
    const line = text.split('\n').find(l => l.startsWith('meshwire_transport_info'));
    const driver = line && /udp_driver="([^"]+)"/.exec(line);
    const backend = line && /aead_backend="([^"]+)"/.exec(line);
    return driver && backend ? `${driver[1]}/${backend[1]}` : undefined;
  } catch {
    return undefined;
  }
}

/** `udp_driver/aead_backend` from a meshwire node's "peer transport bound" log line. */
export function transportFromLog(output: string): string | undefined {
  for (const line of output.split('\n')) {
    if (!line.includes('peer transport bound')) continue;
    try {
      const o = JSON.parse(line) as { udp_driver?: unknown; aead_backend?: unknown };
      if (typeof o.udp_driver === 'string' && typeof o.aead_backend === 'string') {
        return `${o.udp_driver}/${o.aead_backend}`;
      }
    } catch {
      // not a JSON log line
    }
  }
  return undefined;
}

/** Spawns a server process and waits until `ready()` holds; kills it on failure. */
export async function startServer(init: ServerInit): Promise<ServerHandle> {
  const child = spawn(init.command, init.args, {
    env: init.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  let transport: string | undefined;
  const keep = (b: Buffer): void => {
    tail = (tail + b.toString()).slice(-8000);
    // read once, at start-up, before the tail can lose it
    transport ??= tail.includes('peer transport bound') ? transportFromLog(tail) : undefined;
    if (init.verbose) process.stderr.write(`[${init.name}] ${b.toString()}`);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited: string | undefined;
  // A runner that exits early (error, signal handler, timeout) must not leave the server behind.
  const killOnExit = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.on('exit', killOnExit);
  child.on('exit', (code, signal) => {
    exited = `code ${code}, signal ${signal}`;
    process.off('exit', killOnExit);
  });
  child.on('error', e => {
    exited = e.message;
  });
  const deadline = Date.now() + (init.readyTimeoutMs ?? 20_000);
  for (;;) {
    if (exited !== undefined) {
      throw new Error(`${init.name} exited (${exited}) before it was ready:\n${tail.slice(-2000)}`);
    }
    if (await init.ready().catch(() => false)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${init.name} not ready in time:\n${tail.slice(-2000)}`);
    }
    await sleep(50);
  }
  return { child, output: () => tail, transport: () => transport };
}

/** SIGTERM, wait up to `timeoutMs`, then SIGKILL. Resolves with the exit code (null if killed). */
export async function stopProcess(child: ChildProcess, timeoutMs = 5_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  child.kill('SIGTERM');
  return waitExit(child, timeoutMs);
}

function waitExit(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise(resolve => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('exit', code => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise(r => setTimeout(r, ms));
}

/** A TCP port free on 127.0.0.1 right now (the OS picks it). */
export function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** A UDP port free on 127.0.0.1 right now. */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

/** True when something accepts TCP connections on host:port. */
export function tcpAccepts(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise(resolve => {
    const sock = connect({ host, port });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}
