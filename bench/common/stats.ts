/** Small statistics over repeated benchmark runs. */

/** Median of a non-empty list (mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of an empty list');
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Collects the runs of several named figures and reduces each to its median.
 * `add('nats.request_p50_us', 322)` once per run; `medians()` at the end.
 */
export class RunSet {
  private readonly _runs = new Map<string, number[]>();

  add(name: string, value: number): void {
    let list = this._runs.get(name);
    if (!list) {
      list = [];
      this._runs.set(name, list);
    }
    list.push(value);
  }

  runs(name: string): readonly number[] {
    return this._runs.get(name) ?? [];
  }

  names(): string[] {
    return [...this._runs.keys()];
  }

  medians(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, list] of this._runs) out[name] = median(list);
    return out;
  }
}

/** Rounds to a precision fit for a report: integers above 100, 3 significant digits below. */
export function roundFigure(v: number): number {
  if (!Number.isFinite(v)) return v;
  if (Math.abs(v) >= 100) return Math.round(v);
  return Number(v.toPrecision(3));
}
