/**
 * `meshwire serve` with a bad cluster secret file or directory: the node does not start,
 * exits 2 and says on one line which file and line is wrong (src/app/cluster-secrets.ts).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { listenFlags, runCli } from '../../helpers/processes';

const dir = mkdtempSync(join(tmpdir(), 'meshwire-secret-cli-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `meshwire serve` to its exit (stopped after 60 s): exit code and stderr. */
function serveUntilExit(flags: string[]): Promise<{ code: number; stderr: string }> {
  return runCli(['serve', '--node-id', 'secret-node', ...listenFlags(0, 0, 0), ...flags]);
}

const cases: Array<[string, () => string[], string]> = [
  [
    'a short secret on line 4 of a list',
    () => {
      const file = join(dir, 'list');
      writeFileSync(
        file,
        '# meshwire cluster secrets\n# next one sends\nthe current cluster secret\nshort\n'
      );
      return ['--cluster-secret-file', file];
    },
    `meshwire: cluster secret file ${join(dir, 'list')} line 4: the secret is 5 bytes, at least 16 are needed`,
  ],
  [
    'bad base64',
    () => {
      const file = join(dir, 'b64');
      writeFileSync(file, '# meshwire cluster secrets\nbase64:%%%\n');
      return ['--cluster-secret-file', file];
    },
    `meshwire: cluster secret file ${join(dir, 'b64')} line 2: not valid base64 after "base64:"`,
  ],
  [
    'a one-secret file that is too short',
    () => {
      const file = join(dir, 'short');
      writeFileSync(file, 'short\n');
      return ['--cluster-secret-file', file];
    },
    `meshwire: cluster secret file ${join(dir, 'short')}: the secret is 6 bytes, at least 16 are needed`,
  ],
  [
    'an empty secret directory',
    () => {
      const empty = join(dir, 'empty');
      mkdirSync(empty);
      return ['--cluster-secret-dir', empty];
    },
    `meshwire: cluster secret directory ${join(dir, 'empty')} holds no secret file`,
  ],
];

for (const [name, flags, message] of cases) {
  test(`serve with ${name}: exit 2 and one line naming the file`, async t => {
    const { code, stderr } = await serveUntilExit(flags());
    t.is(code, 2, stderr);
    t.is(stderr.trim(), message);
  });
}
