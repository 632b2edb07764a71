/**
 * Requests a node must refuse with a definite status (issue 14, items 7 and 8), driven by
 * grpcio (test/python/limits_client.py): oversized metadata, and bodies that are not
 * protobuf. Every Python call carries a deadline, so a hang would show up as
 * DEADLINE_EXCEEDED, and the assertions name the exact code expected instead.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import test from 'ava';
import { PYTHON, pythonStubs } from '../../helpers/python';
import { startTestNode } from '../../helpers/node';

const SCRIPT = join(__dirname, '..', '..', '..', '..', 'test', 'python', 'limits_client.py');

interface Outcome {
  code: string;
  details: string;
}

async function runLimits(
  mode: 'metadata' | 'malformed'
): Promise<Record<string, Outcome> & { after_send_id?: unknown }> {
  const stubs = pythonStubs();
  const node = await startTestNode();
  try {
    const out = await new Promise<string>((resolve, reject) => {
      execFile(
        PYTHON,
        [SCRIPT, stubs, node.address, mode],
        { timeout: 90_000 },
        (err, stdout, stderr) =>
          err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)
      );
    });
    return JSON.parse(out.trim().split('\n').pop() ?? '{}') as Record<string, Outcome>;
  } finally {
    await node.close();
  }
}

test('metadata of 100 KB and 1 MB (one value or many headers) is RESOURCE_EXHAUSTED on Send and Subscribe; the node keeps serving', async t => {
  const r = await runLimits('metadata');
  const cases = Object.keys(r).filter(k => k !== 'after_send_id');
  t.is(cases.length, 8);
  for (const rpc of ['Send', 'Subscribe']) {
    for (const shape of ['one', 'many']) {
      for (const size of [100_000, 1_000_000]) {
        const o = r[`${rpc}/${shape}/${size}`];
        const what = `${rpc} with ${shape} header(s) of ${size} bytes`;
        if (shape === 'many' && size === 1_000_000 && o?.code === 'UNAVAILABLE') {
          // A header block 15 times the limit: now and then (a loaded machine) the client
          // is still writing it when the connection is closed under it ("Broken pipe").
          // Still a prompt, definite answer, never a hang (README, "The API").
          t.regex(o.details, /Broken pipe|Socket closed|Connection reset/i, what);
          continue;
        }
        t.is(o?.code, 'RESOURCE_EXHAUSTED', what);
      }
    }
  }
  t.regex(String(r.after_send_id), /.+/, 'a normal Send afterwards returns an id');
});

test('a request body that is not protobuf is INVALID_ARGUMENT "malformed request body" on unary, server- and bidi-streaming RPCs', async t => {
  const r = await runLimits('malformed');
  for (const rpc of ['Send', 'Subscribe', 'SendStream', 'ListPeers', 'DeletePeer']) {
    for (const body of ['ff', 'truncated']) {
      const o = r[`${rpc}/${body}`];
      t.is(o?.code, 'INVALID_ARGUMENT', `${rpc} with a ${body} body`);
      t.regex(o?.details ?? '', /^malformed request body: /, `${rpc} with a ${body} body`);
      t.true((o?.details.length ?? 0) <= 200, 'the message is bounded');
    }
  }
  t.regex(String(r.after_send_id), /.+/, 'a normal Send afterwards returns an id');
});
