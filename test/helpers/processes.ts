/** Nodes as separate processes, started through the real CLI (`meshwire serve`). */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export const CLI = join(__dirname, '..', '..', 'src', 'cli', 'main.js');

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
