/**
 * What authentication costs per call over mTLS: unary Sends to an in-process node, one
 * client connection, authenticated by a bearer token, by the client certificate (read
 * and parsed once per connection), or by the client certificate read on every call (the
 * fallback when the connection cannot be found). Prints one JSON line per mode with
 * process CPU per Send (client and node share the process, so compare modes, not
 * absolutes). Usage: node dist/bench/auth/cert-identity.js [sends] [rounds]
 */
import { unary } from '../../test/helpers/node';
import {
  makePki,
  startSecureNode,
  tempDir,
  writeTokens,
} from '../../test/integration/security/helpers';

const SPIFFE_ID = 'spiffe://cluster.local/ns/prod/sa/bench';
const TOKEN = 'bench-token-0123456789abcdef';
const CONCURRENCY = 32;

type Mode = 'token' | 'certificate' | 'certificate-per-call';

async function measure(mode: Mode, sends: number): Promise<Record<string, unknown>> {
  const pki = makePki();
  const srv = pki.issue('srv', 'bench-node', true);
  const cli = pki.issue('cli', 'bench-client', false, [`URI:${SPIFFE_ID}`]);
  const node = await startSecureNode({
    tlsCertFile: srv.cert,
    tlsKeyFile: srv.key,
    tlsClientCaFile: pki.caCert,
    authTokensFile: writeTokens(
      tempDir(),
      `tokens:\n  - name: tok\n    token: ${TOKEN}\n  - name: cert\n    certificate: { spiffe: "${SPIFFE_ID}" }\n`
    ),
  });
  const identities = node.server.guard.peerIdentities;
  if (mode === 'certificate-per-call') {
    // The private per-call read, as when the HTTP/2 session cannot be found.
    const perCall = identities as unknown as { read(call: unknown): unknown };
    (identities as unknown as { identityOf(call: unknown): unknown }).identityOf = call =>
      perCall.read(call);
  }
  const c = node.clients({
    caFile: pki.caCert,
    certFile: cli.cert,
    keyFile: cli.key,
    ...(mode === 'token' ? { token: TOKEN } : {}),
  });
  const run = async (): Promise<void> => {
    let started = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (started++ < sends) {
          await unary(c.messenger, 'Send', {
            message: { topic: 'bench.x', payload: Buffer.from('x') },
          });
        }
      })
    );
  };
  try {
    await run(); // warm-up
    const readsBefore = identities.certificatesRead;
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await run();
    const cpu = process.cpuUsage(cpu0);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    return {
      mode,
      sends,
      sends_per_s: Math.round((sends / ms) * 1000),
      cpu_us_per_send: Number(((cpu.user + cpu.system) / sends).toFixed(1)),
      certificates_read: identities.certificatesRead - readsBefore,
    };
  } finally {
    await node.close();
  }
}

async function main(): Promise<void> {
  const sends = Number(process.argv[2] ?? 20_000);
  const rounds = Number(process.argv[3] ?? 2);
  for (let r = 0; r < rounds; r++) {
    for (const mode of ['token', 'certificate', 'certificate-per-call'] as const) {
      console.log(JSON.stringify(await measure(mode, sends)));
    }
  }
}

void main();
