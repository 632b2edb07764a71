/**
 * Ratios, targets and the markdown section of the local benchmark (pure functions).
 */
import { fmt, machineAndStacks, markdownTable } from '../common/results';
import type { SectionMeta } from '../common/results';

export interface RatioDef {
  /** Key in `ratios` of bench/results/local.json. */
  key: string;
  label: string;
  meshwire: string;
  anchor: string;
  anchorLabel: string;
  /** The goal, when there is one, and the issue that set it. */
  target?: { op: '<=' | '>='; value: number; issue: number };
}

export const RATIOS: readonly RatioDef[] = [
  {
    key: 'request_p50_vs_floor_unary_p50',
    label: 'request p50 (us), sequential, unary Respond',
    meshwire: 'meshwire.request_p50_us',
    anchor: 'grpc_floor.unary_p50_us',
    anchorLabel: 'bare grpc-js unary p50',
    target: { op: '<=', value: 2.0, issue: 16 },
  },
  {
    key: 'request_stream_responder_p50_vs_floor_unary_p50',
    label: 'request p50 (us), sequential, RespondStream',
    meshwire: 'meshwire.request_stream_responder_p50_us',
    anchor: 'grpc_floor.unary_p50_us',
    anchorLabel: 'bare grpc-js unary p50',
    target: { op: '<=', value: 1.6, issue: 16 },
  },
  {
    key: 'node_cpu_per_request_vs_floor_server_cpu_per_call',
    label: 'node CPU (us) per request, sequential, RespondStream',
    meshwire: 'meshwire.node_cpu_us_per_request',
    anchor: 'grpc_floor.server_cpu_us_per_call',
    anchorLabel: 'bare grpc-js server CPU per unary call',
    target: { op: '<=', value: 2.0, issue: 16 },
  },
  {
    key: 'request_p99_vs_floor_unary_p99',
    label: 'request p99 (us), sequential, unary Respond',
    meshwire: 'meshwire.request_p99_us',
    anchor: 'grpc_floor.unary_p99_us',
    anchorLabel: 'bare grpc-js unary p99',
    target: { op: '<=', value: 2.5, issue: 16 },
  },
  {
    key: 'request_stream_responder_p99_vs_floor_unary_p99',
    label: 'request p99 (us), sequential, RespondStream',
    meshwire: 'meshwire.request_stream_responder_p99_us',
    anchor: 'grpc_floor.unary_p99_us',
    anchorLabel: 'bare grpc-js unary p99',
  },
  {
    key: 'request_rps_64_vs_nats',
    label: 'requests/s, 64 in flight',
    meshwire: 'meshwire.request_rps_64',
    anchor: 'nats.request_rps_64',
    anchorLabel: 'NATS',
    target: { op: '>=', value: 1.0, issue: 16 },
  },
  {
    key: 'pubsub_mps_128_vs_nats',
    label: 'pub/sub msgs/s, 128 B',
    meshwire: 'meshwire.pubsub_mps_128',
    anchor: 'nats.pubsub_mps_128',
    anchorLabel: 'NATS',
    target: { op: '>=', value: 1.0, issue: 16 },
  },
  {
    key: 'pubsub_mps_16k_vs_nats',
    label: 'pub/sub msgs/s, 16 KiB',
    meshwire: 'meshwire.pubsub_mps_16k',
    anchor: 'nats.pubsub_mps_16k',
    anchorLabel: 'NATS',
    target: { op: '>=', value: 0.6, issue: 2 },
  },
  {
    key: 'request_p50_vs_nats',
    label: 'request p50 (us), sequential, unary Respond',
    meshwire: 'meshwire.request_p50_us',
    anchor: 'nats.request_p50_us',
    anchorLabel: 'NATS',
  },
  {
    key: 'request_stream_responder_p50_vs_nats',
    label: 'request p50 (us), sequential, RespondStream',
    meshwire: 'meshwire.request_stream_responder_p50_us',
    anchor: 'nats.request_p50_us',
    anchorLabel: 'NATS',
  },
  {
    key: 'node_cpu_per_request_unary_respond_vs_floor_server_cpu_per_call',
    label: 'node CPU (us) per request, sequential, unary Respond',
    meshwire: 'meshwire.node_cpu_us_per_request_unary_respond',
    anchor: 'grpc_floor.server_cpu_us_per_call',
    anchorLabel: 'bare grpc-js server CPU per unary call',
  },
  {
    key: 'request_rps_64_vs_floor_unary_rps_64',
    label: 'requests/s, 64 in flight',
    meshwire: 'meshwire.request_rps_64',
    anchor: 'grpc_floor.unary_rps_64',
    anchorLabel: 'bare grpc-js unary',
  },
  {
    key: 'pubsub_mps_128_vs_floor_stream_mps_128',
    label: 'pub/sub msgs/s, 128 B',
    meshwire: 'meshwire.pubsub_mps_128',
    anchor: 'grpc_floor.stream_mps_128',
    anchorLabel: 'bare grpc-js server stream',
  },
];

/** meshwire / anchor for every pair whose two figures were measured. */
export function computeRatios(figures: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of RATIOS) {
    const m = figures[r.meshwire];
    const a = figures[r.anchor];
    if (m !== undefined && a !== undefined && a > 0) out[r.key] = Math.round((m / a) * 1000) / 1000;
  }
  return out;
}

/** True/false when the ratio has a target, undefined otherwise. */
export function targetMet(def: RatioDef, ratio: number | undefined): boolean | undefined {
  if (!def.target || ratio === undefined) return undefined;
  return def.target.op === '<=' ? ratio <= def.target.value : ratio >= def.target.value;
}

/** The markdown between the bench:local markers. */
export function renderSection(
  figures: Record<string, number>,
  ratios: Record<string, number>,
  meta: SectionMeta
): string {
  const rows = RATIOS.map(def => {
    const ratio = ratios[def.key];
    const met = targetMet(def, ratio);
    return [
      def.label,
      fmt(figures[def.meshwire]),
      `${fmt(figures[def.anchor])} (${def.anchorLabel})`,
      ratio === undefined ? 'n/a' : ratio.toFixed(2),
      def.target ? `${def.target.op} ${def.target.value.toFixed(1)} (#${def.target.issue})` : '-',
      met === undefined ? '-' : met ? 'yes' : '**no**',
    ];
  });
  const names = Object.keys(figures).sort();
  const all = names.map(n => [
    `\`${n}\``,
    fmt(figures[n]),
    (meta.spread[n] ?? []).map(v => fmt(v)).join(', '),
  ]);
  const intro =
    `Command: \`${meta.command}\` (\`node dist/bench/local/run.js\`), run ${meta.date}; ` +
    `${machineAndStacks(meta)}` +
    ` The ${meta.cpus} cores are shared by every process (each server and each ` +
    `client in its own). Each figure is the median of ${meta.runs} runs ` +
    `(${meta.warmupMs / 1000} s warm-up + ${meta.durationMs / 1000} s measured each, after one discarded round of every scenario for the JIT), the ` +
    'systems interleaved run by run; 128-byte payloads unless said. Latency: sequential ' +
    'round trips, percentiles from an HDR histogram. CPU per operation: utime + stime of ' +
    'the server process from /proc/<pid>/stat, read by the client just before the first ' +
    'and just after the last measured round trip, divided by the round trips (all ' +
    'threads of that process; clock ticks of 1/CLK_TCK s). Throughput: requests completed, or ' +
    'messages received by the subscriber (pub/sub), inside the measured window. Ratios ' +
    'are meshwire / anchor.';
  return [
    wrap(intro, 90),
    '',
    markdownTable(['figure', 'meshwire', 'anchor', 'ratio', 'target', 'met?'], rows),
    '',
    'All figures (median, then each run):',
    '',
    markdownTable(['figure', 'median', 'runs'], all),
    ...(meta.notes && meta.notes.length > 0 ? ['', ...meta.notes.map(n => `- ${n}`)] : []),
  ].join('\n');
}

/** Wraps text at spaces to lines of at most `width` characters. */
export function wrap(text: string, width: number): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines.join('\n');
}
