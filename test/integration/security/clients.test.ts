import { join } from 'node:path';
import test from 'ava';
import { runCli, runCommand } from '../../helpers/processes';
import { PYTHON, pythonStubs } from '../../helpers/python';
import {
  ADMIN_TOKEN,
  makePki,
  ORDERS_TOKEN,
  startMtlsNodeForCli,
  startSecureNode,
  tempDir,
  TOKENS_YAML,
  writeTokens,
} from './helpers';

const ROOT = join(__dirname, '..', '..', '..', '..');

test('Python grpcio over TLS: tokens and topic permissions give the same answers as grpc-js', async t => {
  const pki = makePki();
  const srv = pki.issue('py-srv', 'node-py', true);
  const stubs = pythonStubs();
  const node = await startSecureNode({
    tlsCertFile: srv.cert,
    tlsKeyFile: srv.key,
    authTokensFile: writeTokens(tempDir(), TOKENS_YAML),
  });
  try {
    const out = await runCommand(PYTHON, [
      join(ROOT, 'test', 'python', 'secure_client.py'),
      stubs,
      node.address,
      pki.caCert,
      ADMIN_TOKEN,
      ORDERS_TOKEN,
    ]);
    t.is(out.code, 0, out.stderr);
    const r = JSON.parse(out.stdout.trim().split('\n').pop() ?? '{}') as Record<
      string,
      [string, string]
    >;
    t.is(r.no_token[0], 'UNAUTHENTICATED');
    t.is(r.wrong_token[0], 'UNAUTHENTICATED');
    t.is(r.good_send[0], 'OK');
    t.is(r.allowed_send[0], 'OK');
    t.is(r.denied_send[0], 'PERMISSION_DENIED');
    t.regex(r.denied_send[1], /orders\.internal\.audit.*deny "orders\.internal\.>"/);
    t.is(r.outside_send[0], 'PERMISSION_DENIED');
    t.is(r.allowed_sub[0], 'OK');
    t.is(r.denied_sub[0], 'PERMISSION_DENIED');
    t.regex(r.denied_sub[1], /deny "orders\.secret\.status"/);
    t.is(r.outside_sub[0], 'PERMISSION_DENIED');
  } finally {
    await node.close();
  }
});

test('CLI over mTLS with a token from MESHWIRE_TOKEN; exit code 7 without a token or with a forbidden topic', async t => {
  const { node, cliFlags: tlsFlags, caFile } = await startMtlsNodeForCli('cli');
  try {
    const ok = await runCli(['send', 'orders.eu.created', 'hi', ...tlsFlags], {
      env: { MESHWIRE_TOKEN: ORDERS_TOKEN },
    });
    t.is(ok.code, 0, ok.stderr);
    t.regex(ok.stdout, /"id"/);
    const noToken = await runCli(['send', 'orders.eu.created', 'hi', ...tlsFlags]);
    t.is(noToken.code, 7);
    t.regex(noToken.stderr, /no token/);
    const denied = await runCli([
      'send',
      'orders.internal.x',
      'hi',
      ...tlsFlags,
      '--token',
      ORDERS_TOKEN,
    ]);
    t.is(denied.code, 7);
    t.regex(denied.stderr, /may not publish to "orders\.internal\.x"/);
    const peers = await runCli(['peers', 'list', ...tlsFlags], {
      env: { MESHWIRE_TOKEN: ADMIN_TOKEN },
    });
    t.is(peers.code, 0, peers.stderr);
    t.regex(peers.stdout, /sec-node/);
    const noCert = await runCli([
      'send',
      'orders.eu.created',
      'hi',
      '--server',
      node.address,
      '--tls-ca-file',
      caFile,
      '--token',
      ORDERS_TOKEN,
    ]);
    t.is(noCert.code, 3, 'no client certificate: the node is unavailable to this client');
  } finally {
    await node.close();
  }
});
