/**
 * Writing benchmark results: the `{"figures", "ratios"}` JSON under bench/results/ and a
 * markdown section of docs/benchmarks.md between `<!-- bench:NAME:start -->` and
 * `<!-- bench:NAME:end -->`.
 */
import { readFileSync, writeFileSync, mkdirSync, renameSync } from 'node:fs';
import { cpus } from 'node:os';
import { machineInfo, machineLine } from './cpu';
import type { MachineInfo } from './cpu';
import { dirname, join, resolve } from 'node:path';

/** The repository root, from a compiled file under dist/bench/<dir>/. */
export function repoRoot(): string {
  return resolve(__dirname, '..', '..', '..');
}

export interface BenchResults {
  figures: Record<string, number>;
  ratios: Record<string, number>;
  /** How the figures were made (date, command, runs); informative only. */
  meta?: Record<string, unknown>;
}

/** Writes the results atomically (temp file + rename), keys in a stable order. */
export function writeResultsJson(file: string, results: BenchResults): void {
  mkdirSync(dirname(file), { recursive: true });
  const sorted = (o: Record<string, number>): Record<string, number> =>
    Object.fromEntries(
      Object.keys(o)
        .sort()
        .map(k => [k, o[k]!])
    );
  const body: BenchResults = { figures: sorted(results.figures), ratios: sorted(results.ratios) };
  if (results.meta) body.meta = results.meta;
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, JSON.stringify(body, null, 2) + '\n');
  renameSync(tmp, file);
}

/**
 * Replaces the text between the markers of section `name` in `markdown`. Throws when the
 * markers are missing or out of order, so a renamed section is noticed, not silently skipped.
 */
export function replaceMarkedSection(markdown: string, name: string, body: string): string {
  const start = `<!-- bench:${name}:start -->`;
  const end = `<!-- bench:${name}:end -->`;
  const i = markdown.indexOf(start);
  const j = markdown.indexOf(end);
  if (i < 0 || j < 0 || j < i) {
    throw new Error(`markers ${start} ... ${end} not found in order`);
  }
  return markdown.slice(0, i + start.length) + '\n' + body.trim() + '\n' + markdown.slice(j);
}

/** Rewrites section `name` of a markdown file in place. */
export function rewriteDocSection(file: string, name: string, body: string): void {
  const before = readFileSync(file, 'utf8');
  writeFileSync(file, replaceMarkedSection(before, name, body));
}

/**
 * The header sentence every generated section carries: the machine, and the UDP driver and
 * AEAD backend of each meshwire process as the process reported them.
 */
export function machineAndStacks(meta: Pick<SectionMeta, 'machine' | 'processes'>): string {
  const stacks = Object.entries(meta.processes);
  return (
    `Machine: ${machineLine(meta.machine)}. ` +
    (stacks.length === 0
      ? 'No meshwire process reported its UDP driver/AEAD backend.'
      : 'UDP driver/AEAD backend as each meshwire process reported it: ' +
        stacks.map(([name, s]) => `${name} ${s}`).join(', ') +
        '.')
  );
}

/**
 * `udp_driver/aead_backend` reported by each meshwire process of a run, by process name: a
 * bench that starts fresh processes per round notes every report, and differing reports of
 * one name are all kept (joined by "+"), so a fallback in one round shows.
 */
export class StackLog {
  private readonly seen = new Map<string, Set<string>>();

  note(processName: string, stack: string | undefined): void {
    let s = this.seen.get(processName);
    if (!s) this.seen.set(processName, (s = new Set()));
    s.add(stack ?? 'unreported');
  }

  /** For SectionMeta.processes and the results JSON. */
  list(): Record<string, string> {
    return Object.fromEntries([...this.seen].map(([p, s]) => [p, [...s].join('+')]));
  }
}

/** A markdown table; cells are printed as given. */
export function markdownTable(
  headers: readonly string[],
  rows: readonly (readonly string[])[]
): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Formats a number for a table: thousands separators, at most 3 significant decimals. */
export function fmt(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return 'n/a';
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US');
  return String(Number(v.toPrecision(3)));
}

/** What a docs section says about how its figures were made. */
export interface SectionMeta {
  command: string;
  date: string;
  runs: number;
  warmupMs: number;
  durationMs: number;
  node: string;
  cpus: number;
  /** The machine (CPU model, cores, kernel, Node). */
  machine: MachineInfo;
  /** UDP driver/AEAD backend each meshwire process reported using, by process name. */
  processes: Record<string, string>;
  /** Per-figure run values, to show the spread. */
  spread: Record<string, readonly number[]>;
  notes?: string[];
}

export interface PublishRunInit {
  /** Docs section and results file name: `bench:NAME` and bench/results/NAME.json. */
  name: string;
  /** The command a person types to make these figures, e.g. `make bench-local`. */
  command: string;
  figures: Record<string, number>;
  ratios: Record<string, number>;
  /** Per-figure run values (already rounded). */
  spread: Record<string, number[]>;
  runs: number;
  timing: { warmupMs: number; durationMs: number };
  /** --smoke: print the one SMOKE_RESULT line the smoke tests read, write nothing. */
  smoke: boolean;
  /** false with --no-write. */
  write: boolean;
  /** Extra fields for the JSON `meta`. */
  extraMeta?: Record<string, unknown>;
  /**
   * `udp_driver/aead_backend` each meshwire process reported (its start-up log line or its
   * own stats), by process name: printed in the section header and kept in the JSON.
   */
  processes?: Record<string, string>;
  notes: string[];
  render(
    figures: Record<string, number>,
    ratios: Record<string, number>,
    meta: SectionMeta
  ): string;
  log(msg: string): void;
}

/**
 * The end of every benchmark run: print the figures (or the smoke line), then write
 * bench/results/NAME.json and the docs section with the same metadata.
 */
export function publishRun(p: PublishRunInit): void {
  const { figures, ratios } = p;
  if (p.smoke) {
    console.log(`SMOKE_RESULT ${JSON.stringify({ figures, ratios })}`);
    return;
  }
  console.log(JSON.stringify({ figures, ratios }, null, 2));
  if (!p.write) return;
  const meta: SectionMeta = {
    command: p.command,
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    runs: p.runs,
    warmupMs: p.timing.warmupMs,
    durationMs: p.timing.durationMs,
    node: process.version,
    cpus: cpus().length,
    machine: machineInfo(),
    processes: p.processes ?? {},
    spread: p.spread,
    notes: p.notes,
  };
  writeResultsJson(join(repoRoot(), 'bench', 'results', `${p.name}.json`), {
    figures,
    ratios,
    meta: {
      command: meta.command,
      date: meta.date,
      runs: meta.runs,
      warmup_ms: meta.warmupMs,
      duration_ms: meta.durationMs,
      node: meta.node,
      cpus: meta.cpus,
      machine: meta.machine,
      processes: meta.processes,
      ...p.extraMeta,
    },
  });
  rewriteDocSection(
    join(repoRoot(), 'docs', 'benchmarks.md'),
    p.name,
    p.render(figures, ratios, meta)
  );
  p.log(`wrote bench/results/${p.name}.json and docs/benchmarks.md (section bench:${p.name})`);
}
