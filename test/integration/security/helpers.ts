/**
 * Helpers for the security tests: a throwaway PKI made with Debian's openssl, a node
 * started with TLS/tokens/limits, and clients with credentials.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MeshwireClients } from '../../../src/api';
import { createClients } from '../../../src/api';
import type { ClientSecurityInit } from '../../../src/api/auth-client';
import { clientSecurity } from '../../../src/api/auth-client';
import type { NodeApp, NodeConfig } from '../../../src/app';
import { loadConfig, startNode } from '../../../src/app';
import { listenFlags } from '../../helpers/processes';

export interface Pki {
  dir: string;
  caCert: string;
  /**
   * Issues a certificate signed by the CA; `server` adds SANs for 127.0.0.1 and localhost.
   * `sans` (openssl syntax: "URI:spiffe://td/ns/a/sa/b", "DNS:x.svc") are added to a client
   * certificate.
   */
  issue(
    name: string,
    cn: string,
    server: boolean,
    sans?: readonly string[]
  ): { cert: string; key: string };
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

/** A CA in a fresh temporary directory (EC P-256 keys: fast to make). */
export function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'mw-pki-'));
  const ecKey = (file: string): void =>
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', file], dir);
  ecKey('ca.key');
  openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      'ca.key',
      '-subj',
      '/CN=meshwire-test-ca',
      '-days',
      '2',
      '-out',
      'ca.crt',
    ],
    dir
  );
  return {
    dir,
    caCert: join(dir, 'ca.crt'),
    issue(name, cn, server, sans = []) {
      ecKey(`${name}.key`);
      openssl(
        ['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`],
        dir
      );
      const ext = join(dir, `${name}.ext`);
      writeFileSync(
        ext,
        server
          ? 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n'
          : `${sans.length > 0 ? `subjectAltName=${sans.join(',')}\n` : ''}extendedKeyUsage=clientAuth\n`
      );
      openssl(
        [
          'x509',
          '-req',
          '-in',
          `${name}.csr`,
          '-CA',
          'ca.crt',
          '-CAkey',
          'ca.key',
          '-CAcreateserial',
          '-days',
          '2',
          '-extfile',
          ext,
          '-out',
          `${name}.crt`,
        ],
        dir
      );
      return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
    },
  };
}

/** Writes a tokens file (YAML text) and returns its path. */
export function writeTokens(dir: string, yaml: string, name = 'tokens.yaml'): string {
  const path = join(dir, name);
  writeFileSync(path, yaml);
  return path;
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'mw-sec-'));
}

export interface SecureNode {
  server: NodeApp;
  address: string;
  /** Clients with the given security (token, CA, client certificate). */
  clients(init?: ClientSecurityInit): MeshwireClients;
  close(): Promise<void>;
}

/** Starts a node on ephemeral loopback ports with config overrides; files reloaded every 100 ms. */
export async function startSecureNode(
  overrides: Partial<NodeConfig>,
  metrics = false
): Promise<SecureNode> {
  const base = loadConfig({
    argv: [...listenFlags(0, 0, 0)],
    env: {},
  });
  const config: NodeConfig = { ...base, nodeId: 'sec-node', ...overrides };
  const server = await startNode({ config, metrics, reloadIntervalMs: 100 });
  const opened: MeshwireClients[] = [];
  return {
    server,
    address: server.grpcAddress,
    clients(init = {}) {
      const c = createClients(server.grpcAddress, clientSecurity(init));
      opened.push(c);
      return c;
    },
    close: async () => {
      for (const c of opened) c.close();
      await server.shutdown();
    },
  };
}

/** Two tokens used across the tests: full rights and a restricted orders service. */
export const ADMIN_TOKEN = 'admin-token-0123456789abcdef';
export const ORDERS_TOKEN = 'orders-token-0123456789abcdef';
export const LIMITED_TOKEN = 'limited-token-0123456789abcdef';

export const TOKENS_YAML = `tokens:
  - name: admin
    token: ${ADMIN_TOKEN}
    admin: true
  - name: orders
    token: ${ORDERS_TOKEN}
    publish:
      allow: ["orders.>", "shared.*"]
      deny: ["orders.internal.>"]
    subscribe:
      allow: ["orders.*.status", "replies.>"]
      deny: ["orders.secret.status"]
  - name: limited
    token: ${LIMITED_TOKEN}
`;

/**
 * Config overrides of a node serving mTLS: its certificate `srv`, the CA of client
 * certificates (`pki`'s), and a tokens file.
 */
export function mtlsConfig(
  pki: Pki,
  srv: { cert: string; key: string },
  authTokensFile: string
): Partial<NodeConfig> {
  return {
    tlsCertFile: srv.cert,
    tlsKeyFile: srv.key,
    tlsClientCaFile: pki.caCert,
    authTokensFile,
  };
}

/** CLI flags of a client of `address` with certificate `client` (`--server`, CA, certificate, key). */
export function mtlsCliFlags(
  address: string,
  caCert: string,
  client: { cert: string; key: string }
): string[] {
  return [
    '--server',
    address,
    '--tls-ca-file',
    caCert,
    '--tls-cert-file',
    client.cert,
    '--tls-key-file',
    client.key,
  ];
}

/**
 * A node serving mTLS with the tokens of TOKENS_YAML, and the CLI flags of a client that has
 * a certificate from the same CA (`--server`, CA, certificate, key; no token: the test adds
 * one, or not). `name` keeps certificate file names apart.
 */
export async function startMtlsNodeForCli(
  name: string
): Promise<{ node: SecureNode; cliFlags: string[]; caFile: string }> {
  const pki = makePki();
  const srv = pki.issue(`${name}-srv`, `node-${name}`, true);
  const cli = pki.issue(`${name}-client`, `${name}-user`, false);
  const node = await startSecureNode(mtlsConfig(pki, srv, writeTokens(tempDir(), TOKENS_YAML)));
  return { node, cliFlags: mtlsCliFlags(node.address, pki.caCert, cli), caFile: pki.caCert };
}
