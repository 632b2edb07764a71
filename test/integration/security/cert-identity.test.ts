/**
 * Identities from client certificates (mTLS), driven from outside: a real `meshwire serve`
 * process, a Python grpcio client with a certificate and no token, the CLI with a
 * certificate and no token, a tokens-file reload that ends a certificate identity's
 * stream, and a node without client-certificate verification refusing to start with a
 * certificate entry.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServiceError } from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import test from 'ava';
import { serverStream, unary } from '../../helpers/node';
import { freePorts } from '../../helpers/ports';
import type { NodeProcess } from '../../helpers/processes';
import { listenFlags, runCli, runCommand, spawnNode } from '../../helpers/processes';
import { PYTHON, pythonStubs } from '../../helpers/python';
import { waitFor } from '../../helpers/wait';
import {
  ADMIN_TOKEN,
  LIMITED_TOKEN,
  makePki,
  mtlsCliFlags,
  mtlsConfig,
  startSecureNode,
  tempDir,
  writeTokens,
} from './helpers';

const ROOT = join(__dirname, '..', '..', '..', '..');
const ORDERS_ID = 'spiffe://cluster.local/ns/prod/sa/orders';

/** Tokens and certificate identities side by side. */
const CERT_TOKENS_YAML = `tokens:
  - name: admin
    token: ${ADMIN_TOKEN}
    admin: true
  - name: limited
    token: ${LIMITED_TOKEN}
  - name: orders-svc
    certificate: { spiffe: "${ORDERS_ID}" }
    publish:
      allow: ["orders.>"]
      deny: ["orders.internal.>"]
    subscribe:
      allow: ["orders.*.status"]
  - name: by-cn
    certificate: { cn: "cn-client" }
    publish: { allow: ["cn.>"] }
    subscribe: { allow: [] }
  - name: by-dns
    certificate: { dns: "*.billing.svc" }
    publish: { allow: ["billing.>"] }
`;

function certPki() {
  const pki = makePki();
  return {
    pki,
    srv: pki.issue('srv', 'node-cert', true),
    orders: pki.issue('orders', 'spiffe-client', false, [`URI:${ORDERS_ID}`]),
    byCn: pki.issue('bycn', 'cn-client', false),
    billing: pki.issue('billing', 'billing-client', false, ['DNS:api.billing.svc']),
    stranger: pki.issue('stranger', 'stranger', false, [
      'URI:spiffe://cluster.local/ns/prod/sa/other',
      'DNS:stranger.prod.svc',
    ]),
  };
}

test('Python grpcio with a client certificate and no token: SPIFFE, CN and DNS identities, their rights, tokens beside them', async t => {
  const { pki, srv, orders, byCn, billing, stranger } = certPki();
  const dir = tempDir();
  const [grpcPort, peerPort, metricsPort] = await freePorts(3);
  let node: NodeProcess | undefined;
  try {
    node = await spawnNode('cert-node', [
      ...listenFlags(grpcPort, peerPort, metricsPort),
      '--tls-cert-file',
      srv.cert,
      '--tls-key-file',
      srv.key,
      '--tls-client-ca-file',
      pki.caCert,
      '--auth-tokens-file',
      writeTokens(dir, CERT_TOKENS_YAML),
    ]);
    const as = (c: { cert: string; key: string }) => ({ cert: c.cert, key: c.key });
    const cases = [
      { label: 'spiffe_send', ...as(orders), call: 'send', topic: 'orders.eu.created' },
      { label: 'spiffe_denied', ...as(orders), call: 'send', topic: 'orders.internal.audit' },
      { label: 'spiffe_outside', ...as(orders), call: 'send', topic: 'billing.x' },
      { label: 'spiffe_sub', ...as(orders), call: 'sub', topic: 'orders.eu.status' },
      { label: 'spiffe_sub_denied', ...as(orders), call: 'sub', topic: 'orders.>' },
      { label: 'spiffe_peers', ...as(orders), call: 'peers' },
      { label: 'cn_send', ...as(byCn), call: 'send', topic: 'cn.x' },
      { label: 'cn_denied', ...as(byCn), call: 'send', topic: 'orders.eu.created' },
      { label: 'cn_sub', ...as(byCn), call: 'sub', topic: 'cn.x' },
      { label: 'dns_send', ...as(billing), call: 'send', topic: 'billing.x' },
      { label: 'stranger_send', ...as(stranger), call: 'send', topic: 'orders.eu.created' },
      // A token decides when one is presented, whatever the certificate.
      {
        label: 'token_beside_cert',
        ...as(orders),
        call: 'send',
        topic: 'orders.internal.audit',
        token: LIMITED_TOKEN,
      },
      {
        label: 'wrong_token_beside_cert',
        ...as(orders),
        call: 'send',
        topic: 'orders.eu.created',
        token: 'wrong-token-0123456789abcdef',
      },
      { label: 'admin_token_peers', ...as(stranger), call: 'peers', token: ADMIN_TOKEN },
    ];
    const casesFile = join(dir, 'cases.json');
    writeFileSync(casesFile, JSON.stringify(cases));
    const out = await runCommand(PYTHON, [
      join(ROOT, 'test', 'python', 'cert_identity_client.py'),
      pythonStubs(),
      node.grpc,
      pki.caCert,
      casesFile,
    ]);
    t.is(out.code, 0, out.stderr);
    const r = JSON.parse(out.stdout.trim().split('\n').pop() ?? '{}') as Record<
      string,
      [string, string]
    >;
    t.deepEqual(r.spiffe_send, ['OK', '']);
    t.deepEqual(r.spiffe_denied, [
      'PERMISSION_DENIED',
      'certificate identity "orders-svc" may not publish to "orders.internal.audit": denied by deny "orders.internal.>"',
    ]);
    t.deepEqual(r.spiffe_outside, [
      'PERMISSION_DENIED',
      'certificate identity "orders-svc" may not publish to "billing.x": not matched by publish allow ["orders.>"]',
    ]);
    t.deepEqual(r.spiffe_sub, ['OK', '']);
    t.is(r.spiffe_sub_denied[0], 'PERMISSION_DENIED');
    t.regex(
      r.spiffe_sub_denied[1],
      /^certificate identity "orders-svc" may not subscribe to "orders\.>"/
    );
    t.deepEqual(r.spiffe_peers, [
      'PERMISSION_DENIED',
      'certificate identity "orders-svc" may not use the Peers admin service: it needs "admin: true" in the tokens file',
    ]);
    t.deepEqual(r.cn_send, ['OK', '']);
    t.is(r.cn_denied[0], 'PERMISSION_DENIED');
    t.deepEqual(r.cn_sub, [
      'PERMISSION_DENIED',
      'certificate identity "by-cn" may not subscribe to "cn.x": not every topic it matches is within subscribe allow [] (nothing allowed)',
    ]);
    t.deepEqual(r.dns_send, ['OK', ''], 'DNS SAN api.billing.svc matches *.billing.svc');
    t.deepEqual(r.stranger_send, [
      'UNAUTHENTICATED',
      'no token, and the client certificate (CN "stranger", DNS:stranger.prod.svc, URI:spiffe://cluster.local/ns/prod/sa/other) matches no certificate entry of the tokens file: send "authorization: Bearer <token>", or add an entry such as "- name: <name>" with "certificate: { spiffe: <URI SAN> }" (or cn:, dns:, uri:)',
    ]);
    t.deepEqual(r.token_beside_cert, ['OK', ''], 'the token "limited" (all topics) decides');
    t.deepEqual(r.wrong_token_beside_cert, ['UNAUTHENTICATED', 'unknown token']);
    t.deepEqual(r.admin_token_peers, ['OK', '']);
    // The refusals are logged with the identity's name and kind.
    await waitFor('the refusal log line', () =>
      (node as NodeProcess).output().includes('"principal_kind":"certificate"')
    );
    t.regex(node.output(), /"token_name":"orders-svc","principal_kind":"certificate"/);
    t.regex(node.output(), /"auth":"5 tokens \(3 by client certificate\)"/);
  } finally {
    await node?.kill();
  }
});

test('CLI with a client certificate and no token: allowed send exits 0, a denied one 7', async t => {
  const { pki, srv, orders } = certPki();
  const node = await startSecureNode(
    mtlsConfig(pki, srv, writeTokens(tempDir(), CERT_TOKENS_YAML))
  );
  const flags = mtlsCliFlags(node.address, pki.caCert, orders);
  const env = { env: { MESHWIRE_TOKEN: '' } };
  try {
    const ok = await runCli(['send', 'orders.eu.created', 'hi', ...flags], env);
    t.is(ok.code, 0, ok.stderr);
    t.regex(ok.stdout, /"id"/);
    const denied = await runCli(['send', 'orders.internal.x', 'hi', ...flags], env);
    t.is(denied.code, 7);
    t.regex(
      denied.stderr,
      /certificate identity "orders-svc" may not publish to "orders\.internal\.x"/
    );
    const peers = await runCli(['peers', 'list', ...flags], env);
    t.is(peers.code, 7);
    t.regex(peers.stderr, /may not use the Peers admin service/);
  } finally {
    await node.close();
  }
});

test('a reload that removes a certificate identity ends its open stream (UNAUTHENTICATED)', async t => {
  const { pki, srv, orders } = certPki();
  const tokensFile = writeTokens(tempDir(), CERT_TOKENS_YAML);
  const node = await startSecureNode(mtlsConfig(pki, srv, tokensFile));
  try {
    const c = node.clients({ caFile: pki.caCert, certFile: orders.cert, keyFile: orders.key });
    // Many calls on one connection: its certificate is read and parsed once.
    for (let i = 0; i < 5; i++) {
      await unary(c.messenger, 'Send', {
        message: { topic: 'orders.eu.created', payload: Buffer.from('x') },
      });
    }
    t.is(node.server.guard.peerIdentities.certificatesRead, 1);
    t.is(node.server.guard.peerIdentities.fallbacks, 0, 'the HTTP/2 session was found');
    t.is(node.server.guard.rejected.get('unauthenticated'), 0);
    const sub = serverStream(c.messenger, 'Subscribe', { topics: ['orders.eu.status'] });
    const ended = new Promise<ServiceError>(resolve => sub.on('error', resolve));
    await new Promise<void>(resolve => sub.on('metadata', () => resolve()));
    await waitFor('the stream to be tracked', () => node.server.guard.trackedStreams === 1);
    writeFileSync(
      tokensFile,
      `tokens:\n  - name: admin\n    token: ${ADMIN_TOKEN}\n    admin: true\n`
    );
    const err = await ended;
    t.is(err.code, status.UNAUTHENTICATED);
    t.is(
      err.details,
      'certificate identity "orders-svc" was removed from the tokens file, changed or has expired: this stream is ended; reconnect with a token or a certificate the tokens file names'
    );
    const rejected = node.server.guard.rejected;
    t.is(rejected.get('unauthenticated'), 1, 'the ended stream is counted');
    // The connection keeps its certificate, not its rights: the next call is refused.
    const next = await t.throwsAsync<ServiceError>(
      unary(c.messenger, 'Send', {
        message: { topic: 'orders.eu.created', payload: Buffer.from('x') },
      })
    );
    t.is(next?.code, status.UNAUTHENTICATED);
    t.regex(next?.details ?? '', /^no token: send metadata "authorization: Bearer <token>"/);
    t.is(rejected.get('unauthenticated'), 2);
  } finally {
    await node.close();
  }
});

test('per-client limits count a certificate identity as client cert:<name>', async t => {
  const { pki, srv, orders } = certPki();
  const node = await startSecureNode({
    ...mtlsConfig(pki, srv, writeTokens(tempDir(), CERT_TOKENS_YAML)),
    maxSubscriptionsPerClient: 1,
  });
  try {
    // Two connections with the same certificate are one client.
    const first = node.clients({ caFile: pki.caCert, certFile: orders.cert, keyFile: orders.key });
    const second = node.clients({ caFile: pki.caCert, certFile: orders.cert, keyFile: orders.key });
    const sub = serverStream(first.messenger, 'Subscribe', { topics: ['orders.eu.status'] });
    sub.on('error', () => undefined);
    await new Promise<void>(resolve => sub.on('metadata', () => resolve()));
    const refused = serverStream(second.messenger, 'Subscribe', { topics: ['orders.us.status'] });
    const err = await new Promise<ServiceError>(resolve => refused.on('error', resolve));
    t.is(err.code, status.RESOURCE_EXHAUSTED);
    t.is(
      err.details,
      'limit subscriptions_per_client: client cert:orders-svc already has 1 concurrent subscriptions (at most 1); finish some first or raise maxSubscriptionsPerClient'
    );
    sub.cancel();
  } finally {
    await node.close();
  }
});

test('a certificate entry without client-certificate verification stops the node at start', async t => {
  const { srv } = certPki();
  const [grpcPort, peerPort, metricsPort] = await freePorts(3);
  const tokens = writeTokens(tempDir(), CERT_TOKENS_YAML);
  const out = await runCli([
    'serve',
    '--node-id',
    'no-mtls',
    ...listenFlags(grpcPort, peerPort, metricsPort),
    '--tls-cert-file',
    srv.cert,
    '--tls-key-file',
    srv.key,
    '--auth-tokens-file',
    tokens,
  ]);
  t.is(out.code, 2, 'a configuration error');
  t.true(
    `${out.stdout}${out.stderr}`.includes(
      `tokens file ${tokens}: tokens.2.certificate (entry "orders-svc"): this node does not verify client certificates, so no certificate may grant rights: set tlsClientCaFile (--tls-client-ca-file, MESHWIRE_TLS_CLIENT_CA_FILE) to the CA that signs them, or give the entry a token`
    ),
    `${out.stdout}${out.stderr}`
  );
});
