/**
 * A meshwire node as a separate process (`node dist/src/cli/main.js serve`), the way an
 * operator runs it, so tracing starts before grpc-js loads and exports through the
 * normal OTLP exporter. Ports are ephemeral and read back from the start-up log line.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';

export const CLI = join(__dirname, '..', '..', '..', 'src', 'cli', 'main.js');

export interface NodeProcess {
  proc: ChildProcess;
  /** gRPC "host:port". */
  grpc: string;
  metricsPort: number;
  /** Every stdout line so far (JSON log lines). */
  lines: string[];
  stop(): Promise<number | null>;
}

/**
 * Starts `serve` with `env` as the WHOLE environment (plus PATH), so no OTEL_* leaks in
 * from the test runner's environment.
 */
export async function startNodeProcess(
  args: string[],
  env: Record<string, string>,
  timeoutMs = 20_000
): Promise<NodeProcess> {
  const proc = spawn(
    process.execPath,
    [
      CLI,
      'serve',
      ...['--grpc-listen', '--peer-listen', '--metrics-listen'].flatMap(flag =>
        args.includes(flag) ? [] : [flag, '127.0.0.1:0']
      ),
      ...args,
    ],
    { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] }
  );
  const exited = new Promise<number | null>(resolve => proc.on('exit', code => resolve(code)));
  const lines: string[] = [];
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  let buf = '';
  const started = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`node did not start: ${lines.join('\n')}\n${stderr}`)),
      timeoutMs
    );
    proc.on('exit', code => {
      clearTimeout(timer);
      reject(new Error(`node exited with ${code}: ${lines.join('\n')}\n${stderr}`));
    });
    proc.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        if (line.includes('meshwire node started')) {
          clearTimeout(timer);
          resolve(JSON.parse(line) as Record<string, unknown>);
        }
      }
    });
  });
  const metrics = String(started.metrics);
  return {
    proc,
    grpc: String(started.grpc),
    metricsPort: Number(metrics.slice(metrics.lastIndexOf(':') + 1)),
    lines,
    stop: async () => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** GET /metrics as text. */
export async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  return res.text();
}

/** `n` distinct free UDP ports on 127.0.0.1 (held together, so none repeats). */
export async function freeUdpPorts(n: number): Promise<number[]> {
  const sockets = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createSocket>>((resolve, reject) => {
          const s = createSocket('udp4');
          s.once('error', reject);
          s.bind(0, '127.0.0.1', () => resolve(s));
        })
    )
  );
  const ports = sockets.map(s => s.address().port);
  await Promise.all(sockets.map(s => new Promise<void>(resolve => s.close(() => resolve()))));
  return ports;
}

/**
 * node-a and node-b as processes on the UDP ports `udp` (a, b), static peers of each
 * other; `env` and `flags` add per-node environment and serve flags.
 */
export function startPeeredPair(
  udp: [number, number],
  env: (id: 'node-a' | 'node-b') => Record<string, string> = () => ({}),
  flags: (id: 'node-a' | 'node-b') => string[] = () => []
): Promise<[NodeProcess, NodeProcess]> {
  const start = (id: 'node-a' | 'node-b', own: number, other: 'node-a' | 'node-b', port: number) =>
    startNodeProcess(
      [
        '--node-id',
        id,
        '--peer-listen',
        `127.0.0.1:${own}`,
        '--peers',
        `${other}=127.0.0.1:${port}`,
        ...flags(id),
      ],
      env(id)
    );
  return Promise.all([
    start('node-a', udp[0], 'node-b', udp[1]),
    start('node-b', udp[1], 'node-a', udp[0]),
  ]);
}
