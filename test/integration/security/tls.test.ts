import { copyFileSync, readFileSync } from 'node:fs';
import { connect } from 'node:tls';
import type { ServiceError } from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import test from 'ava';
import { unary, waitFor } from '../../helpers/node';
import type { Pki } from './helpers';
import { makePki, startSecureNode } from './helpers';

const send = { message: { topic: 'tls.check', payload: Buffer.from('x') } };

/** CN of the certificate the node serves to a new TLS connection. */
function servedCn(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(
      {
        host: '127.0.0.1',
        port,
        ca: readFileSync(ca),
        ALPNProtocols: ['h2'],
        servername: 'localhost',
      },
      () => {
        const cn = s.getPeerCertificate().subject.CN;
        s.end();
        resolve(String(cn));
      }
    );
    s.on('error', reject);
  });
}

let pki: Pki;
test.before(() => {
  pki = makePki();
});

test('TLS: a client trusting the CA is served; a plaintext client is refused', async t => {
  const srv = pki.issue('srv-tls', 'node-tls', true);
  const node = await startSecureNode({ tlsCertFile: srv.cert, tlsKeyFile: srv.key });
  try {
    const ok = node.clients({ caFile: pki.caCert });
    const r = await unary<{ id: string }>(ok.messenger, 'Send', send);
    t.truthy(r.id);
    const plain = node.clients();
    const err = await t.throwsAsync<ServiceError>(unary(plain.messenger, 'Send', send, 3000));
    t.is(err?.code, status.UNAVAILABLE);
  } finally {
    await node.close();
  }
});

test('mTLS: no client certificate or one from another CA is refused; a CA-signed one is served', async t => {
  const srv = pki.issue('srv-mtls', 'node-mtls', true);
  const cli = pki.issue('cli-mtls', 'client-a', false);
  const other = makePki().issue('cli-other', 'intruder', false);
  const node = await startSecureNode({
    tlsCertFile: srv.cert,
    tlsKeyFile: srv.key,
    tlsClientCaFile: pki.caCert,
  });
  try {
    const noCert = node.clients({ caFile: pki.caCert });
    const e1 = await t.throwsAsync<ServiceError>(unary(noCert.messenger, 'Send', send, 3000));
    t.is(e1?.code, status.UNAVAILABLE);
    const wrongCa = node.clients({ caFile: pki.caCert, certFile: other.cert, keyFile: other.key });
    const e2 = await t.throwsAsync<ServiceError>(unary(wrongCa.messenger, 'Send', send, 3000));
    t.is(e2?.code, status.UNAVAILABLE);
    const good = node.clients({ caFile: pki.caCert, certFile: cli.cert, keyFile: cli.key });
    const r = await unary<{ id: string }>(good.messenger, 'Send', send);
    t.truthy(r.id);
  } finally {
    await node.close();
  }
});

test('rotation: new certificate files are served without a restart; a mismatched pair keeps the old one', async t => {
  const v1 = pki.issue('srv-v1', 'node-v1', true);
  const v2 = pki.issue('srv-v2', 'node-v2', true);
  // A new CA, as when the cluster's issuer is replaced: clients trusting only it
  // cannot connect before the rotation and can after.
  const pki2 = makePki();
  const v3 = pki2.issue('srv-v3', 'node-v3', true);
  const live = pki.issue('srv-live', 'node-v1', true);
  copyFileSync(v1.cert, live.cert);
  copyFileSync(v1.key, live.key);
  const node = await startSecureNode({ tlsCertFile: live.cert, tlsKeyFile: live.key });
  const tlsState = node.server.tls;
  if (!tlsState) throw new Error('tls reloader missing');
  try {
    const port = node.server.grpcPort;
    t.is(await servedCn(port, pki.caCert), 'node-v1');
    const client = node.clients({ caFile: pki.caCert });
    await unary(client.messenger, 'Send', send);

    copyFileSync(v2.cert, live.cert);
    copyFileSync(v2.key, live.key);
    await waitFor(() => tlsState.reloads >= 1, 5000, 'certificate reload');
    t.is(await servedCn(port, pki.caCert), 'node-v2');
    // The connection opened before the rotation keeps working.
    await unary(client.messenger, 'Send', send);

    // Half-written rotation: the new certificate with the old key. Refused, v2 stays.
    copyFileSync(v3.cert, live.cert);
    await waitFor(() => tlsState.failures >= 1, 5000, 'refused reload');
    t.is(await servedCn(port, pki.caCert), 'node-v2');

    const newCaClient = node.clients({ caFile: pki2.caCert });
    const before = await t.throwsAsync<ServiceError>(
      unary(newCaClient.messenger, 'Send', send, 3000)
    );
    t.is(before?.code, status.UNAVAILABLE);
    copyFileSync(v3.key, live.key);
    await waitFor(() => tlsState.reloads >= 2, 5000, 'second reload');
    t.is(await servedCn(port, pki2.caCert), 'node-v3');
    const fresh = node.clients({ caFile: pki2.caCert });
    const r = await unary<{ id: string }>(fresh.messenger, 'Send', send);
    t.truthy(r.id);
  } finally {
    await node.close();
  }
});
