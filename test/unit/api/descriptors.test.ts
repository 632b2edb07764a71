/**
 * proto/descriptors.binpb (what server reflection serves, src/api/reflection.ts) must be
 * exactly what `make descriptors` produces from the protos of proto/ now.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import test from 'ava';
import { protoDir } from '../../../src/api';
import { DESCRIPTOR_SET_FILE, DescriptorIndex } from '../../../src/api/reflection';

const ROOT = join(protoDir(), '..');

/** The DESCRIPTOR_PROTOS list of the Makefile (continuation lines joined). */
function makefileProtos(): string[] {
  const mk = readFileSync(join(ROOT, 'Makefile'), 'utf8').replace(/\\\n/g, ' ');
  const line = mk.split('\n').find(l => l.startsWith('DESCRIPTOR_PROTOS :='));
  if (!line) throw new Error('Makefile has no DESCRIPTOR_PROTOS');
  return line.slice('DESCRIPTOR_PROTOS :='.length).trim().split(/\s+/);
}

function protoFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(e =>
    e.isDirectory()
      ? protoFiles(join(dir, e.name))
      : e.name.endsWith('.proto')
        ? [relative(protoDir(), join(dir, e.name))]
        : []
  );
}

test('the committed descriptor set is what protoc makes from proto/ now (run make descriptors)', t => {
  const out = join(mkdtempSync(join(tmpdir(), 'mw-desc-')), 'descriptors.binpb');
  execFileSync('protoc', [
    `-I${protoDir()}`,
    '--include_imports',
    '--include_source_info',
    '-o',
    out,
    ...makefileProtos(),
  ]);
  const fresh = readFileSync(out);
  const committed = readFileSync(join(protoDir(), DESCRIPTOR_SET_FILE));
  t.true(
    fresh.equals(committed),
    'proto/descriptors.binpb is stale: run `make descriptors` and commit the result'
  );
});

test('every proto under proto/ is in the descriptor set', t => {
  const index = new DescriptorIndex(readFileSync(join(protoDir(), DESCRIPTOR_SET_FILE)));
  const files = protoFiles(protoDir()).sort();
  t.true(files.includes('messaging/v1/messaging.proto'));
  t.deepEqual([...index.files.keys()].sort(), files);
});
