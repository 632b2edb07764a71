/**
 * A throwaway CA and one certificate signed by it, made with Debian's openssl, for the
 * chart's TLS values: the nodes serve it and (mTLS) the helm test client presents it, so it
 * carries both serverAuth and clientAuth, and names 127.0.0.1 plus the given DNS names.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCerts {
  'ca.crt': string;
  'tls.crt': string;
  'tls.key': string;
}

export function makeCerts(dnsNames: string[]): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'meshwire-certs-'));
  const ssl = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  };
  try {
    ssl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '2',
      '-subj',
      '/CN=meshwire test CA'
    );
    ssl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'tls.key',
      '-out',
      'tls.csr',
      '-subj',
      '/CN=meshwire node'
    );
    const san = ['IP:127.0.0.1', ...dnsNames.map(n => `DNS:${n}`)].join(',');
    writeFileSync(
      join(dir, 'ext.cnf'),
      `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature\n`
    );
    ssl(
      'x509',
      '-req',
      '-in',
      'tls.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'tls.crt',
      '-days',
      '2',
      '-extfile',
      'ext.cnf'
    );
    const read = (f: string): string => readFileSync(join(dir, f), 'utf8');
    return { 'ca.crt': read('ca.crt'), 'tls.crt': read('tls.crt'), 'tls.key': read('tls.key') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
