/**
 * CPU time of other processes, read from /proc/<pid>/stat (utime + stime, in clock ticks),
 * and the machine a benchmark ran on. Linux only; used to report CPU per operation, which
 * is steadier than latency on a shared machine and is what a user pays for.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { measureLatency } from './load';
import type { LatencyResult, LoopLimits } from './load';

let ticksPerSecond: number | undefined;

/** The kernel's clock ticks per second (`getconf CLK_TCK`; 100 when getconf fails). */
export function clockTicksPerSecond(): number {
  if (ticksPerSecond === undefined) {
    try {
      const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
      ticksPerSecond = Number.isInteger(n) && n > 0 ? n : 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/**
 * utime + stime in clock ticks from the text of /proc/<pid>/stat. The command name (field
 * 2) is in parentheses and may contain spaces, so fields are counted after the last ')':
 * there field 3 (state) is the first, utime (field 14) the 12th and stime (15) the 13th.
 */
export function parseStatTicks(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) {
    throw new Error(`unexpected /proc/<pid>/stat: ${stat.slice(0, 200)}`);
  }
  return utime + stime;
}

/** CPU time (user + system) a process has used so far, in clock ticks. */
export function cpuTicks(pid: number): number {
  return parseStatTicks(readFileSync(`/proc/${pid}/stat`, 'utf8'));
}

/**
 * CPU of some processes over a window: `start()` then `stop()`; `usPerOp(ops)` is the CPU
 * (microseconds, all the processes together) per operation in the window.
 */
export class CpuWindow {
  private _from = 0;
  private _ticks = 0;

  constructor(private readonly _pids: readonly number[]) {}

  private _read(): number {
    let sum = 0;
    for (const pid of this._pids) sum += cpuTicks(pid);
    return sum;
  }

  start(): void {
    this._from = this._read();
  }

  stop(): void {
    this._ticks = this._read() - this._from;
  }

  /** Microseconds of CPU per operation; NaN when there was no operation. */
  usPerOp(ops: number): number {
    if (ops <= 0) return NaN;
    return (this._ticks * 1e6) / clockTicksPerSecond() / ops;
  }
}

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  kernel: string;
  /** This process's Node version. */
  node: string;
}

/** The machine: CPU model (/proc/cpuinfo), core count, kernel (os.release()) and Node. */
export function machineInfo(): MachineInfo {
  let cpuModel = cpus()[0]?.model ?? 'unknown CPU';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpuModel = m[1]!.trim();
  } catch {
    // not Linux: os.cpus() said it
  }
  return { cpuModel, cores: cpus().length, kernel: release(), node: process.version };
}

/** `AMD EPYC, 2 cores, Linux 6.1.0, Node v20.11.0`: for section headers. */
export function machineLine(m: MachineInfo = machineInfo()): string {
  return `${m.cpuModel}, ${m.cores} cores, Linux ${m.kernel}, Node ${m.node}`;
}

export interface CpuLatencyResult extends LatencyResult {
  /** CPU of `cpuPids` per recorded op (us), when pids were given. */
  cpuUsPerOp?: number;
}

/** measureLatency, plus the CPU the processes `cpuPids` used per op in its window. */
export async function measureLatencyCpu(
  op: () => Promise<unknown>,
  limits: LoopLimits,
  cpuPids: readonly number[] | undefined
): Promise<CpuLatencyResult> {
  const cpu = cpuPids && cpuPids.length > 0 ? new CpuWindow(cpuPids) : undefined;
  const r = await measureLatency(op, limits, cpu);
  return cpu ? { ...r, cpuUsPerOp: cpu.usPerOp(r.count) } : r;
}
