/**
 * Ratios, targets and the markdown section of the cluster benchmark (pure functions).
 * Figure names: `meshwire.*` one node, `cluster.*` two nodes (client on node-a, the other
 * end on node-b), `nats.*` the anchor; `loss1.` in front when measured at 1% random loss.
 */
import { fmt, machineAndStacks, markdownTable } from '../common/results';
import type { SectionMeta } from '../common/results';
import { wrap } from '../local/report';

export interface ComparisonDef {
  /** Key in `ratios` of bench/results/cluster.json. */
  key: string;
  label: string;
  /** The figure compared (numerator, or minuend of a difference). */
  figure: string;
  /** What it is compared with. */
  anchor: string;
  anchorLabel: string;
  /** `ratio`: figure / anchor; `diff`: figure - anchor (same unit as the figures). */
  kind: 'ratio' | 'diff';
  /** Issue 5's target, when there is one. */
  target?: { op: '<=' | '>='; value: number };
}

export const COMPARISONS: readonly ComparisonDef[] = [
  {
    key: 'cluster_pubsub_mps_128_vs_single',
    label: 'pub/sub msgs/s, 128 B, A -> B',
    figure: 'cluster.pubsub_mps_128',
    anchor: 'meshwire.pubsub_mps_128',
    anchorLabel: 'one node',
    kind: 'ratio',
    target: { op: '>=', value: 0.9 }, // issue 16
  },
  {
    key: 'cluster_request_p50_minus_single_us',
    label: 'request p50 (us), sequential, A -> B',
    figure: 'cluster.request_p50_us',
    anchor: 'meshwire.request_p50_us',
    anchorLabel: 'one node',
    kind: 'diff',
    target: { op: '<=', value: 300 },
  },
  {
    key: 'loss1_cluster_request_p99_vs_nats',
    label: 'request p99 (us), sequential, 1% loss',
    figure: 'loss1.cluster.request_p99_us',
    anchor: 'loss1.nats.request_p99_us',
    anchorLabel: 'NATS, 1% loss',
    kind: 'ratio',
    target: { op: '<=', value: 0.2 },
  },
  {
    key: 'cluster_request_p50_vs_single',
    label: 'request p50 (us), sequential',
    figure: 'cluster.request_p50_us',
    anchor: 'meshwire.request_p50_us',
    anchorLabel: 'one node',
    kind: 'ratio',
  },
  {
    key: 'cluster_request_p99_vs_single',
    label: 'request p99 (us), sequential',
    figure: 'cluster.request_p99_us',
    anchor: 'meshwire.request_p99_us',
    anchorLabel: 'one node',
    kind: 'ratio',
  },
  {
    key: 'cluster_request_rps_64_vs_single',
    label: 'requests/s, 64 in flight',
    figure: 'cluster.request_rps_64',
    anchor: 'meshwire.request_rps_64',
    anchorLabel: 'one node',
    kind: 'ratio',
  },
  {
    key: 'cluster_pubsub_mps_128_vs_nats',
    label: 'pub/sub msgs/s, 128 B',
    figure: 'cluster.pubsub_mps_128',
    anchor: 'nats.pubsub_mps_128',
    anchorLabel: 'NATS',
    kind: 'ratio',
  },
  {
    key: 'cluster_request_p50_vs_nats',
    label: 'request p50 (us), sequential',
    figure: 'cluster.request_p50_us',
    anchor: 'nats.request_p50_us',
    anchorLabel: 'NATS',
    kind: 'ratio',
  },
  {
    key: 'cluster_request_rps_64_vs_nats',
    label: 'requests/s, 64 in flight',
    figure: 'cluster.request_rps_64',
    anchor: 'nats.request_rps_64',
    anchorLabel: 'NATS',
    kind: 'ratio',
  },
  {
    key: 'loss1_cluster_request_p50_vs_nats',
    label: 'request p50 (us), sequential, 1% loss',
    figure: 'loss1.cluster.request_p50_us',
    anchor: 'loss1.nats.request_p50_us',
    anchorLabel: 'NATS, 1% loss',
    kind: 'ratio',
  },
  {
    key: 'loss1_cluster_request_rps_64_vs_nats',
    label: 'requests/s, 64 in flight, 1% loss',
    figure: 'loss1.cluster.request_rps_64',
    anchor: 'loss1.nats.request_rps_64',
    anchorLabel: 'NATS, 1% loss',
    kind: 'ratio',
  },
  {
    key: 'loss1_cluster_pubsub_mps_128_vs_nats',
    label: 'pub/sub msgs/s, 128 B, 1% loss',
    figure: 'loss1.cluster.pubsub_mps_128',
    anchor: 'loss1.nats.pubsub_mps_128',
    anchorLabel: 'NATS, 1% loss',
    kind: 'ratio',
  },
  {
    key: 'loss1_cluster_request_p99_vs_lossless',
    label: 'request p99 (us), sequential, 1% loss',
    figure: 'loss1.cluster.request_p99_us',
    anchor: 'cluster.request_p99_us',
    anchorLabel: 'A -> B without loss',
    kind: 'ratio',
  },
];

/** Every comparison whose two figures were measured (ratios to 3 decimals, diffs to 1). */
export function computeComparisons(figures: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of COMPARISONS) {
    const f = figures[c.figure];
    const a = figures[c.anchor];
    if (f === undefined || a === undefined || !Number.isFinite(f) || !Number.isFinite(a)) continue;
    if (c.kind === 'diff') out[c.key] = Math.round((f - a) * 10) / 10;
    else if (a > 0) out[c.key] = Math.round((f / a) * 1000) / 1000;
  }
  return out;
}

/** True/false when the comparison has a target, undefined otherwise. */
export function targetMet(def: ComparisonDef, value: number | undefined): boolean | undefined {
  if (!def.target || value === undefined) return undefined;
  return def.target.op === '<=' ? value <= def.target.value : value >= def.target.value;
}

/** `>= 0.9x`, `<= +300 us`. */
export function formatTarget(def: ComparisonDef): string {
  if (!def.target) return '-';
  return def.kind === 'diff'
    ? `${def.target.op} +${def.target.value} us`
    : `${def.target.op} ${def.target.value}x`;
}

function formatValue(def: ComparisonDef, v: number | undefined): string {
  if (v === undefined) return 'n/a';
  return def.kind === 'diff' ? `${v >= 0 ? '+' : ''}${fmt(v)} us` : `${v.toFixed(2)}x`;
}

/** The markdown between the bench:cluster markers. */
export function renderSection(
  figures: Record<string, number>,
  comparisons: Record<string, number>,
  meta: SectionMeta
): string {
  const rows = COMPARISONS.map(def => {
    const v = comparisons[def.key];
    const met = targetMet(def, v);
    return [
      def.label,
      fmt(figures[def.figure]),
      `${fmt(figures[def.anchor])} (${def.anchorLabel})`,
      formatValue(def, v),
      formatTarget(def),
      met === undefined ? '-' : met ? 'yes' : '**no**',
    ];
  });
  const all = Object.keys(figures)
    .sort()
    .map(n => [`\`${n}\``, fmt(figures[n]), (meta.spread[n] ?? []).map(v => fmt(v)).join(', ')]);
  const intro =
    `Command: \`${meta.command}\` (\`node dist/bench/cluster/run.js\`), run ${meta.date}; ` +
    `${machineAndStacks(meta)} The ${meta.cpus} cores are shared by every process (each node, NATS server ` +
    `and client in its own). Each figure is the median of ${meta.runs} runs ` +
    `(${meta.warmupMs / 1000} s warm-up + ${meta.durationMs / 1000} s measured each, after one discarded round of every scenario for the JIT), the ` +
    'systems interleaved run by run; 128-byte payloads. `cluster`: the requester and the ' +
    'publisher on node A, the responder and the subscriber on node B, every Request, ' +
    'RequestStream and SendStream sent with `target: {peer_id: node-b}`; pub/sub measured at ' +
    'the subscriber. `meshwire`: the same clients on one node. `nats`: nats-server with npm ' +
    '`nats` clients. `loss1.*`: the same inside a network namespace whose nftables drops 1% of ' +
    'the packets at random.';
  return [
    wrap(intro, 90),
    '',
    markdownTable(['figure', 'cluster', 'compared with', 'value', 'target', 'met?'], rows),
    '',
    'All figures (median, then each run):',
    '',
    markdownTable(['figure', 'median', 'runs'], all),
    ...(meta.notes && meta.notes.length > 0 ? ['', ...meta.notes.map(n => `- ${n}`)] : []),
  ].join('\n');
}
