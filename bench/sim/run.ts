/**
 * The cluster simulator's command line: one scenario over N simulated nodes.
 *
 *   node dist/bench/sim/run.js --nodes 16 --seed 7 --scenario crash --duration 20000
 *
 * Prints one JSON line (figures and violations) and exits 1 when a delivery property was
 * violated. `--scenario all` runs each in turn. The scale sweep is bench/sim/scale.ts.
 */
import { parseArgs } from 'node:util';
import type { ScenarioName } from './scenarios';
import { SCENARIOS, runScenario } from './scenarios';

const USAGE = `usage: node dist/bench/sim/run.js [--nodes N] [--seed S] [--scenario ${SCENARIOS.join('|')}|all]
       [--duration MS (virtual)] [--rate PER_S] [--loss P]`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: '8' },
      seed: { type: 'string', default: '1' },
      scenario: { type: 'string', default: 'steady' },
      duration: { type: 'string', default: '20000' },
      rate: { type: 'string', default: '200' },
      loss: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const nodes = Number(values.nodes);
  const seed = Number(values.seed);
  const durationMs = Number(values.duration);
  const rate = Number(values.rate);
  const names: ScenarioName[] =
    values.scenario === 'all' ? [...SCENARIOS] : [values.scenario as ScenarioName];
  if (
    !names.every(n => (SCENARIOS as readonly string[]).includes(n)) ||
    !(nodes >= 2 && nodes <= 4096) ||
    !Number.isFinite(seed) ||
    !(durationMs > 0 && durationMs <= 3_600_000) ||
    !(rate > 0 && rate <= 10_000)
  ) {
    console.error(USAGE);
    return 2;
  }
  const loss = values.loss === undefined ? undefined : Number(values.loss);
  let violations = 0;
  for (const scenario of names) {
    const r = await runScenario({
      scenario,
      nodes,
      seed,
      durationMs,
      rate,
      link:
        loss === undefined
          ? undefined
          : { lossRate: loss, duplicateRate: 0.01, reorderRate: 0.02, delayMs: [0.5, 3] },
      log: line => console.error(`[sim ${scenario} n=${nodes}] ${line}`),
    });
    violations += r.figures.violations ?? 0;
    console.log(JSON.stringify(r));
  }
  return violations > 0 ? 1 : 0;
}

main().then(
  code => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(2);
  }
);
