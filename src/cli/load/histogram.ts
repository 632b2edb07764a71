/**
 * A log-linear latency histogram (HDR-style): values below 32 µs have their own bucket;
 * above, each power of two is split into 16 linear buckets, so a percentile is within
 * 1/16 (6.25 %) of the true value with a few hundred counters for any latency.
 */

/** Linear sub-buckets per power of two (2^SUB_BITS). */
const SUB_BITS = 4;
const SUB = 1 << SUB_BITS;

function bucketOf(micros: number): number {
  const v = Math.max(0, Math.floor(micros));
  if (v < 2 * SUB) return v;
  const shift = Math.floor(Math.log2(v)) - SUB_BITS;
  return shift * SUB + Math.floor(v / 2 ** shift);
}

/** [lower, upper) in µs of a bucket. */
function boundsOf(bucket: number): [number, number] {
  if (bucket < 2 * SUB) return [bucket, bucket + 1];
  const shift = Math.floor(bucket / SUB) - 1;
  const lower = (bucket - shift * SUB) * 2 ** shift;
  return [lower, lower + 2 ** shift];
}

export interface LatencySummary {
  count: number;
  minMs: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

export class LatencyHistogram {
  private readonly counts: number[] = [];
  count = 0;
  private sumMicros = 0;
  private minMicros = Infinity;
  private maxMicros = 0;

  /** Records one latency in milliseconds (kept at µs resolution). */
  record(ms: number): void {
    const micros = Math.max(0, ms * 1000);
    const b = bucketOf(micros);
    while (this.counts.length <= b) this.counts.push(0);
    this.counts[b]++;
    this.count++;
    this.sumMicros += micros;
    this.minMicros = Math.min(this.minMicros, micros);
    this.maxMicros = Math.max(this.maxMicros, micros);
  }

  /** Adds another histogram's values (e.g. one per subscriber, combined for the summary). */
  merge(other: LatencyHistogram): void {
    for (let b = 0; b < other.counts.length; b++) {
      while (this.counts.length <= b) this.counts.push(0);
      this.counts[b] += other.counts[b];
    }
    this.count += other.count;
    this.sumMicros += other.sumMicros;
    this.minMicros = Math.min(this.minMicros, other.minMicros);
    this.maxMicros = Math.max(this.maxMicros, other.maxMicros);
  }

  /** The q-quantile (0 < q <= 1) in ms: the middle of its bucket, within [min, max]. */
  quantileMs(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let b = 0; b < this.counts.length; b++) {
      seen += this.counts[b];
      if (seen >= rank) {
        const [lo, hi] = boundsOf(b);
        const mid = Math.min(this.maxMicros, Math.max(this.minMicros, (lo + hi) / 2));
        return mid / 1000;
      }
    }
    return this.maxMicros / 1000;
  }

  summary(): LatencySummary {
    const empty = this.count === 0;
    return {
      count: this.count,
      minMs: empty ? 0 : this.minMicros / 1000,
      meanMs: empty ? 0 : this.sumMicros / this.count / 1000,
      p50Ms: this.quantileMs(0.5),
      p90Ms: this.quantileMs(0.9),
      p99Ms: this.quantileMs(0.99),
      p999Ms: this.quantileMs(0.999),
      maxMs: this.maxMicros / 1000,
    };
  }

  /**
   * Counts per power-of-two row from the minimum's to the maximum's, for the ASCII
   * histogram: [lowerMs, upperMs, count].
   */
  octaves(): [number, number, number][] {
    if (this.count === 0) return [];
    const rows = new Map<number, number>();
    for (let b = 0; b < this.counts.length; b++) {
      if (this.counts[b] === 0) continue;
      const octave = Math.floor(Math.log2(Math.max(1, boundsOf(b)[0])));
      rows.set(octave, (rows.get(octave) ?? 0) + this.counts[b]);
    }
    const keys = [...rows.keys()];
    const out: [number, number, number][] = [];
    for (let o = Math.min(...keys); o <= Math.max(...keys); o++) {
      const lower = o === 0 ? 0 : 2 ** o;
      out.push([lower / 1000, 2 ** (o + 1) / 1000, rows.get(o) ?? 0]);
    }
    return out;
  }
}

/** The octave rows as text bars of at most `width` '#'. */
export function asciiHistogram(h: LatencyHistogram, width = 40): string[] {
  const rows = h.octaves();
  const most = Math.max(1, ...rows.map(r => r[2]));
  const fmt = (ms: number): string => (ms < 1 ? `${(ms * 1000).toFixed(0)}µs` : `${ms}ms`);
  return rows.map(([lo, hi, n]) => {
    const bar = '#'.repeat(Math.ceil((n / most) * width));
    const pct = ((100 * n) / h.count).toFixed(1);
    return `${`${fmt(lo)}-${fmt(hi)}`.padStart(20)} ${String(n).padStart(9)} ${pct.padStart(5)}% ${bar}`;
  });
}
