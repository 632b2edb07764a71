/**
 * Writing benchmark results: the `{"figures", "ratios"}` JSON under bench/results/ and a
 * markdown section of docs/benchmarks.md between `<!-- bench:NAME:start -->` and
 * `<!-- bench:NAME:end -->`.
 */
import { readFileSync, writeFileSync, mkdirSync, renameSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

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
