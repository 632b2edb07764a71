import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { PYTHON, pythonStubs } from '../../helpers/python';
import { startTestNode } from '../../helpers/node';

const SCRIPT = join(__dirname, '..', '..', '..', '..', 'test', 'python', 'client.py');

test('a Python grpcio client subscribes, sends, requests and responds', async t => {
  t.true(
    existsSync(PYTHON),
    'Debian python3 with python3-grpcio is installed by scripts/apt-deps.sh'
  );
  const stubs = pythonStubs();
  const node = await startTestNode();
  try {
    const out = await new Promise<string>((resolve, reject) => {
      execFile(PYTHON, [SCRIPT, stubs, node.address], { timeout: 60_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)
      );
    });
    const r = JSON.parse(out.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
    t.true(r.send_delivered);
    t.is(r.received_payload, 'from-python');
    t.is(r.received_header, 'python');
    t.true(r.received_id_matches);
    t.is(r.reply_payload, 'cba');
    t.is(r.responder_peer, 'test-node');
    t.is(r.invalid_code, 'INVALID_ARGUMENT');
    t.regex(String(r.invalid_details), /empty token/);
  } finally {
    await node.close();
  }
});
