/** Runs a benchmark's `--smoke` mode and reads back its SMOKE_RESULT line. */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import type { ExecutionContext } from 'ava';

const root = resolve(__dirname, '..', '..', '..');

export interface SmokeResult {
  figures: Record<string, number>;
  ratios: Record<string, number>;
}

/** Runs `dist/bench/<name>/run.js --smoke`; asserts it exits 0 and printed the result line. */
export async function runSmoke(
  t: ExecutionContext,
  name: string,
  timeoutMs: number
): Promise<SmokeResult> {
  const { code, stdout, stderr } = await new Promise<{
    code: number;
    stdout: string;
    stderr: string;
  }>(done => {
    execFile(
      process.execPath,
      [`dist/bench/${name}/run.js`, '--smoke'],
      { cwd: root, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (err, out, errOut) => {
        const c = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        done({ code: c, stdout: out, stderr: errOut });
      }
    );
  });
  t.is(code, 0, stderr.slice(-3000));
  const line = stdout.split('\n').find(l => l.startsWith('SMOKE_RESULT '));
  if (!line) {
    t.fail(`no SMOKE_RESULT line in:\n${stdout.slice(-2000)}\n${stderr.slice(-2000)}`);
    return { figures: {}, ratios: {} };
  }
  return JSON.parse(line.slice('SMOKE_RESULT '.length)) as SmokeResult;
}

/** Asserts each named value is a finite positive number. */
export function assertPositive(
  t: ExecutionContext,
  values: Record<string, number>,
  names: readonly string[],
  what: string
): void {
  for (const name of names) {
    const v = values[name];
    t.true(typeof v === 'number' && Number.isFinite(v) && v > 0, `${what} ${name} = ${v}`);
  }
}
