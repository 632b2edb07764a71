/**
 * The scale plot (docs/scale.svg), written by hand: one small line chart per figure,
 * cost per node against N on a log-2 axis. No plotting dependency.
 */

export interface ScalePoint {
  nodes: number;
  heapMbPerNode: number;
  keepalivePpsPerNode: number;
  connectionsPerNode: number;
  interestConvergeP99Ms: number;
  /** Phases shortened (scale.ts --phase): its idle window is too short to plot packets/s. */
  phase?: number;
}

interface Panel {
  title: string;
  value: (p: ScalePoint) => number;
}

const PANELS: Panel[] = [
  { title: 'heap MB per node', value: p => p.heapMbPerNode },
  { title: 'connections per node', value: p => p.connectionsPerNode },
  {
    title: 'idle packets/s per node',
    value: p => ((p.phase ?? 1) === 1 ? p.keepalivePpsPerNode : NaN),
  },
  { title: 'interest converge p99 ms', value: p => p.interestConvergeP99Ms },
];

const W = 220;
const H = 170;
const PAD = { left: 44, right: 12, top: 26, bottom: 30 };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
}

function label(v: number): string {
  if (v >= 100) return String(Math.round(v));
  return String(Number(v.toPrecision(2)));
}

function panel(all: ScalePoint[], p: Panel, x0: number): string {
  // A point without a meaningful value (NaN) is left out of this panel.
  const points = all.filter(pt => Number.isFinite(p.value(pt)));
  const xs = points.map(pt => Math.log2(pt.nodes));
  const ys = points.map(p.value).map(v => (Number.isFinite(v) ? v : 0));
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs, xMin + 1);
  const yMax = Math.max(...ys, 1e-9) * 1.1;
  const pw = W - PAD.left - PAD.right;
  const ph = H - PAD.top - PAD.bottom;
  const sx = (x: number): number => x0 + PAD.left + ((x - xMin) / (xMax - xMin)) * pw;
  const sy = (y: number): number => PAD.top + ph - (y / yMax) * ph;
  const out: string[] = [];
  out.push(
    `<text x="${x0 + W / 2}" y="16" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`
  );
  out.push(
    `<line x1="${sx(xMin)}" y1="${sy(0)}" x2="${sx(xMax)}" y2="${sy(0)}" stroke="#444"/>`,
    `<line x1="${sx(xMin)}" y1="${sy(0)}" x2="${sx(xMin)}" y2="${PAD.top}" stroke="#444"/>`
  );
  for (const f of [0, 0.5, 1]) {
    const v = (yMax / 1.1) * f;
    out.push(
      `<text x="${sx(xMin) - 4}" y="${sy(v) + 4}" text-anchor="end">${label(v)}</text>`,
      `<line x1="${sx(xMin)}" y1="${sy(v)}" x2="${sx(xMax)}" y2="${sy(v)}" stroke="#ddd"/>`
    );
  }
  points.forEach((pt, i) => {
    out.push(
      `<text x="${sx(xs[i] as number)}" y="${H - PAD.bottom + 14}" text-anchor="middle">${pt.nodes}</text>`
    );
  });
  const path = points.map((_, i) => `${sx(xs[i] as number)},${sy(ys[i] as number)}`).join(' ');
  out.push(`<polyline points="${path}" fill="none" stroke="#1f6feb" stroke-width="2"/>`);
  points.forEach((_, i) => {
    out.push(
      `<circle cx="${sx(xs[i] as number)}" cy="${sy(ys[i] as number)}" r="3" fill="#1f6feb"/>`
    );
  });
  out.push(
    `<text x="${x0 + PAD.left + pw / 2}" y="${H - 4}" text-anchor="middle">nodes (N)</text>`
  );
  return out.join('\n');
}

/** The SVG document: the panels side by side. */
export function scaleChart(points: ScalePoint[]): string {
  const width = W * PANELS.length;
  const body = PANELS.map((p, i) => panel(points, p, i * W)).join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${H}" viewBox="0 0 ${width} ${H}" font-family="sans-serif" font-size="10">`,
    `<rect width="${width}" height="${H}" fill="white"/>`,
    body,
    '</svg>',
    '',
  ].join('\n');
}
