/**
 * Small readers for Prometheus text and PromQL, for the tests that hold /metrics, the
 * docs and the Grafana dashboard (helm/meshwire/dashboards/meshwire.json) together.
 */

export interface MetricFamily {
  name: string;
  type?: string;
  unit?: string;
  /** Sample lines: name (with _bucket/_sum/_count for histograms), labels, value. */
  samples: Array<{ name: string; labels: Record<string, string>; value: number }>;
}

function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) out[m[1]] = m[2];
  return out;
}

/** Parses the Prometheus text format into families (by the name of their TYPE line). */
export function parseExposition(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>();
  const family = (name: string): MetricFamily => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { name, samples: [] }));
    return f;
  };
  for (const line of text.split('\n')) {
    const meta = /^# (TYPE|UNIT) (\S+) (.*)$/.exec(line);
    if (meta) {
      if (meta[1] === 'TYPE') family(meta[2]).type = meta[3];
      else family(meta[2]).unit = meta[3];
      continue;
    }
    if (line.startsWith('#') || !line.trim()) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!sample) continue;
    const name = sample[1];
    const base = families.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    family(base).samples.push({
      name,
      labels: parseLabels(sample[2] ?? ''),
      value: Number(sample[3]),
    });
  }
  return families;
}

/** The value of the sample `name` whose labels include `labels` (undefined if none). */
export function sampleValue(
  families: Map<string, MetricFamily>,
  name: string,
  labels: Record<string, string> = {}
): number | undefined {
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name !== name) continue;
      if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) return s.value;
    }
  }
  return undefined;
}

const PROMQL_WORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'inf',
  'nan',
]);

/**
 * Metric names a PromQL expression selects: label matchers, ranges, strings and
 * grouping clauses are removed; of the identifiers left, those not called as functions
 * or aggregations and not PromQL keywords are metric names.
 */
export function metricNamesOf(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    if (m[2]) continue; // a function or aggregation
    if (PROMQL_WORDS.has(m[1].toLowerCase())) continue;
    names.add(m[1]);
  }
  return [...names];
}

/**
 * Every PromQL expression of a Grafana dashboard: panel targets, and the metric
 * selector of each `label_values(...)` query variable.
 */
export function dashboardExpressions(dashboard: unknown): string[] {
  const out: string[] = [];
  const visit = (node: unknown, key?: string): void => {
    if (Array.isArray(node)) {
      for (const n of node) visit(n);
    } else if (node && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) visit(v, k);
    } else if (typeof node === 'string' && key === 'expr') {
      out.push(node);
    } else if (typeof node === 'string' && key === 'definition') {
      out.push(variableMetricExpr(node));
    }
  };
  visit(dashboard);
  return out;
}

/** A variable query `label_values(metric{...}, label)` -> its metric expression. */
export function variableMetricExpr(definition: string): string {
  const m = /^label_values\((.*),\s*[a-zA-Z_]\w*\)$/.exec(definition.trim());
  return m ? m[1] : definition;
}
