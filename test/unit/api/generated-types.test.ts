/**
 * src/api/generated (the TypeScript types src/api/proto.ts derives the wire types from)
 * must be exactly what `make types` produces from proto/messaging/v1 now, with the loader
 * options the server decodes with (PROTO_LOADER_OPTIONS).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import test from 'ava';
import { PROTO_LOADER_OPTIONS, protoDir } from '../../../src/api';

const ROOT = join(protoDir(), '..');
const GENERATED = join(ROOT, 'src', 'api', 'generated');

/** A `NAME := value` line of the Makefile. */
function makefileValue(name: string): string {
  const mk = readFileSync(join(ROOT, 'Makefile'), 'utf8').replace(/\\\n/g, ' ');
  const line = mk.split('\n').find(l => l.startsWith(`${name} :=`));
  if (!line) throw new Error(`Makefile has no ${name}`);
  return line.slice(`${name} :=`.length).trim();
}

/** Every file under `dir`, relative to it, with its text. */
function tree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p, 'utf8'));
    }
  };
  walk(dir);
  return out;
}

test('make types uses the loader options of src/api/proto.ts', t => {
  const o = PROTO_LOADER_OPTIONS;
  const expected = [
    ...(o.keepCase ? ['--keepCase'] : []),
    `--longs=${o.longs.name}`,
    `--enums=${o.enums.name}`,
    ...(o.defaults ? ['--defaults'] : []),
    ...(o.oneofs ? ['--oneofs'] : []),
    '--grpcLib=@grpc/grpc-js',
  ];
  t.deepEqual(makefileValue('TYPES_OPTIONS').split(/\s+/), expected);
  t.is(makefileValue('TYPES_DIR'), relative(ROOT, GENERATED));
});

test('the committed src/api/generated is what make types makes from proto/ now', t => {
  const protos = readdirSync(join(protoDir(), 'messaging', 'v1'))
    .filter(f => f.endsWith('.proto'))
    .sort()
    .map(f => `messaging/v1/${f}`);
  const out = mkdtempSync(join(tmpdir(), 'mw-types-'));
  // Run from the repository root with -I proto, as make does: the files name their proto.
  execFileSync(
    process.execPath,
    [
      join(ROOT, 'node_modules', '.bin', 'proto-loader-gen-types'),
      ...makefileValue('TYPES_OPTIONS').split(/\s+/),
      '-I',
      'proto',
      '-O',
      out,
      ...protos,
    ],
    { cwd: ROOT }
  );
  const fresh = tree(out);
  const committed = tree(GENERATED);
  t.deepEqual(
    [...committed.keys()].sort(),
    [...fresh.keys()].sort(),
    'files differ: run make types'
  );
  const stale = [...fresh].filter(([file, text]) => committed.get(file) !== text).map(([f]) => f);
  t.deepEqual(stale, [], 'src/api/generated is stale: run `make types` and commit the result');
});
