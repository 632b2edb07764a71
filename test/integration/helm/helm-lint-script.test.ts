/**
 * scripts/helm-lint.sh must fail when an invalid value set is accepted, when one is
 * rejected for another reason than its "# expect:" line says, and when a valid set fails.
 * It runs here on copies of the fixtures with one planted mistake each.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, HELM, ROOT, helm } from './chart-helpers';

function lintWith(plant: Record<string, string>): { status: number | null; out: string } {
  helm(['version', '--short']); // a clear error when .tools/helm is missing
  const dir = mkdtempSync(join(tmpdir(), 'helm-lint-fixtures-'));
  try {
    cpSync(FIXTURES, dir, { recursive: true });
    for (const [name, text] of Object.entries(plant)) writeFileSync(join(dir, name), text);
    const r = spawnSync('bash', [join(ROOT, 'scripts/helm-lint.sh'), HELM], {
      encoding: 'utf8',
      env: { ...process.env, HELM_LINT_FIXTURES: dir },
      timeout: 120_000,
    });
    return { status: r.status, out: r.stdout + r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('helm-lint.sh fails on an accepted invalid set, a wrong rejection reason and a broken valid set', t => {
  // One run with three planted mistakes (the script goes on after a failure and counts
  // them); the clean fixtures themselves pass in `make helm-lint`.
  const r = lintWith({
    'invalid-actually-valid.yaml': '# expect: anything\nreplicaCount: 2\n',
    'invalid-wrong-reason.yaml': '# expect: /replicaCount.*minimum\nports:\n  grpc: 0\n',
    'values-broken.yaml': 'replicaCount: many\n',
  });
  t.is(r.status, 1, r.out);
  t.regex(r.out, /invalid-actually-valid was accepted; it must be rejected/);
  t.regex(r.out, /invalid-wrong-reason was rejected, but not with/);
  t.regex(r.out, /FAIL: helm (lint|template) \(values-broken\)/);
  t.regex(r.out, /helm-lint: 3 of \d+ checks failed/);
  // The untouched fixtures still pass inside the same run.
  t.regex(r.out, /ok +invalid-negative-replicas rejected/);
  t.regex(r.out, /ok +values-replicas-5/);
});
