/**
 * Reads a V8 `.cpuprofile` (from `node --cpu-prof`) and lists functions by self time.
 * Pure: give it the parsed JSON.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
  startTime: number;
  endTime: number;
}

export interface HotSpot {
  /** `name (file:line)` with the file relative to `root` when under it. */
  where: string;
  selfMs: number;
  /** Share of the busy time (all sampled time less `(idle)`). */
  percent: number;
}

/** Only samples between these offsets from the profile's start count (ms). */
export interface ProfileWindow {
  fromMs: number;
  toMs: number;
}

/**
 * Self time by function (summed over every node of the same function), largest first.
 * With `window`, only samples inside it count (to leave out start-up and shutdown).
 */
export function hotSpots(
  profile: CpuProfile,
  root = '',
  top = 20,
  window?: ProfileWindow
): HotSpot[] {
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const selfUs = new Map<string, number>();
  let total = 0;
  let atUs = 0;
  for (let i = 0; i < samples.length; i++) {
    const node = byId.get(samples[i]!);
    atUs += deltas[i] ?? 0;
    // timeDeltas[i] is the time before sample i; attribute the next delta to this sample.
    const dt = Math.max(0, deltas[i + 1] ?? deltas[i] ?? 0);
    if (window && (atUs < window.fromMs * 1000 || atUs > window.toMs * 1000)) continue;
    total += dt;
    if (!node) continue;
    const key = describe(node.callFrame, root);
    selfUs.set(key, (selfUs.get(key) ?? 0) + dt);
  }
  const busy = total - (selfUs.get('(idle)') ?? 0);
  return [...selfUs.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([where, us]) => ({
      where,
      selfMs: Math.round(us / 100) / 10,
      percent: busy > 0 && where !== '(idle)' ? Math.round((us / busy) * 1000) / 10 : 0,
    }));
}

function describe(cf: CallFrame, root: string): string {
  const name = cf.functionName || '(anonymous)';
  if (!cf.url) return name;
  let file = cf.url.replace(/^file:\/\//, '');
  if (root && file.startsWith(root)) file = relative(root, file);
  file = file.replace(/^.*node_modules\//, '');
  return `${name} (${file}:${cf.lineNumber + 1})`;
}

/** Reads the newest `.cpuprofile` in `dir`. */
export function readNewestProfile(dir: string): CpuProfile {
  const files = readdirSync(dir)
    .filter(f => f.endsWith('.cpuprofile'))
    .sort();
  if (files.length === 0) throw new Error(`no .cpuprofile in ${dir}`);
  return JSON.parse(readFileSync(join(dir, files[files.length - 1]!), 'utf8')) as CpuProfile;
}

/** Busy and idle time of a profile, in ms. */
export function busyIdleMs(
  profile: CpuProfile,
  window?: ProfileWindow
): { busyMs: number; idleMs: number } {
  const spots = hotSpots(profile, '', Number.MAX_SAFE_INTEGER, window);
  const idle = spots.find(s => s.where === '(idle)')?.selfMs ?? 0;
  const all = spots.reduce((a, s) => a + s.selfMs, 0);
  return { busyMs: Math.round(all - idle), idleMs: Math.round(idle) };
}

/** A plain-text table of hot spots (percent of busy time). */
export function formatHotSpots(spots: readonly HotSpot[]): string {
  return spots
    .map(
      s => `${s.selfMs.toFixed(1).padStart(9)} ms ${s.percent.toFixed(1).padStart(5)}%  ${s.where}`
    )
    .join('\n');
}
