/**
 * The non-JavaScript client of the tests: Debian's Python with python3-grpcio (only
 * /usr/bin/python3 sees Debian's python3-* packages), and message classes that protoc
 * makes from proto/ (scripts/apt-deps.sh installs both).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { protoDir } from '../../src/api';

export const PYTHON = '/usr/bin/python3';

/** The folder of the test's Python scripts (test/python), from dist/test/... or test/... */
export const PYTHON_DIR = join(__dirname, '..', '..', '..', 'test', 'python');

/** A fresh folder of Python message classes for `proto` (a path under proto/). */
export function pythonStubs(proto = 'messaging/v1/messaging.proto'): string {
  const stubs = mkdtempSync(join(tmpdir(), 'mw-py-'));
  execFileSync('protoc', [`-I${protoDir()}`, `--python_out=${stubs}`, proto]);
  return stubs;
}
