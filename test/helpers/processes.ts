/** Nodes as separate processes, started through the real CLI (`meshwire serve`). */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';

export const CLI = join(__dirname, '..', '..', 'src', 'cli', 'main.js');

/** How a finished command ended: exit code (1 when killed or not started) and its output. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `file` to its end (killed after `timeoutMs`); `env` is added to this process's
 * environment. Never rejects: a failure is a non-zero code.
 */
export function runCommand(
  file: string,
  args: string[],
  opts: { env?: Record<string, string>; timeoutMs?: number } = {}
): Promise<CommandResult> {
  return new Promise(resolve => {
    execFile(
      file,
      args,
      { timeout: opts.timeoutMs ?? 60_000, env: { ...process.env, ...opts.env } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      }
    );
  });
}

/** Runs the CLI (`meshwire <args>`) to its end, like runCommand. */
export function runCli(
  args: string[],
  opts: { env?: Record<string, string>; timeoutMs?: number } = {}
): Promise<CommandResult> {
  return runCommand(process.execPath, [CLI, ...args], opts);
}

/**
 * The three listen flags of `meshwire serve` on 127.0.0.1 (gRPC, peer, metrics); port 0
 * lets the system choose.
 */
export function listenFlags(grpcPort: number, peerPort: number, metricsPort: number): string[] {
  return [
    '--grpc-listen',
    `127.0.0.1:${grpcPort}`,
    '--peer-listen',
    `127.0.0.1:${peerPort}`,
    '--metrics-listen',
    `127.0.0.1:${metricsPort}`,
  ];
}

export interface NodeProcess {
  id: string;
  grpc: string;
  proc: ChildProcessWithoutNullStreams;
  output: () => string;
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Spawns `meshwire serve` with the given flags; resolves once it logs that it started. */
export async function spawnNode(
  id: string,
  flags: string[],
  env: Record<string, string> = {}
): Promise<NodeProcess> {
  const proc = spawn(process.execPath, [CLI, 'serve', '--node-id', id, ...flags], {
    env: { ...process.env, ...env },
  });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>(resolve => proc.on('exit', code => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    // Generous: start-up loads the OpenTelemetry SDK and gRPC, slow on a loaded machine.
    const timer = setTimeout(() => {
      // Never leave a half-started node behind.
      proc.kill('SIGKILL');
      reject(new Error(`${id} did not start:\n${out}`));
    }, 60_000);
    const check = (): void => {
      if (out.includes('meshwire node started')) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout.on('data', check);
    void exited.then(code => {
      clearTimeout(timer);
      reject(new Error(`${id} exited with ${code} before starting:\n${out}`));
    });
  });
  const grpcFlag = flags.indexOf('--grpc-listen');
  return {
    id,
    grpc: grpcFlag >= 0 ? flags[grpcFlag + 1] : '127.0.0.1:7400',
    proc,
    output: () => out,
    exited,
    kill: (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}
