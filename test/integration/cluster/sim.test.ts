/**
 * A small seeded run of each simulator scenario (bench/sim/scenarios.ts): four nodes of
 * the shipped assembly over the lossy virtual network on a virtual clock, seconds of
 * cluster time each, checked for the delivery properties (exactly once per subscriber,
 * one member per queue group, per-sender order, every request answered while the paths
 * are healthy, interest tables that agree at the end). `make sim` runs the large ones.
 */
import test from 'ava';
import type { ScenarioName } from '../../../bench/sim/scenarios';
import { SCENARIOS, runScenario } from '../../../bench/sim/scenarios';

// One at a time: each scenario owns the process's Math.random (seeded) while it runs.
for (const scenario of SCENARIOS) {
  test.serial(`simulated ${scenario}: four nodes, 2% loss, no delivery violation`, async t => {
    const r = await runScenario({
      scenario: scenario as ScenarioName,
      nodes: 4,
      seed: 18,
      durationMs: 4000,
      rate: 80,
    });
    t.deepEqual(r.violations, {}, JSON.stringify(r.figures));
    t.true((r.figures.sent ?? 0) > 100, 'traffic flowed');
    t.true((r.figures.delivered ?? 0) > 0);
    t.true((r.figures.requests_ok ?? 0) > 0, 'requests were answered');
    t.true((r.figures.network_lost ?? 0) > 0, 'the network lost packets');
    if (scenario === 'crash') t.true((r.figures.restart_reconnect_ms ?? -1) >= 0);
    if (scenario === 'partition') t.true((r.figures.heal_converge_ms ?? -1) >= 0);
    if (scenario === 'join') t.true((r.figures.join_ms ?? -1) >= 0);
  });
}

test.serial('a simulated run replays from its seed', async t => {
  const run = async (): Promise<Record<string, number>> =>
    (await runScenario({ scenario: 'crash', nodes: 3, seed: 7, durationMs: 4000, rate: 100 }))
      .figures;
  t.deepEqual(await run(), await run());
});
