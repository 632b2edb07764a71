import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import test from 'ava';
import {
  parseTokensFile,
  principalLabel,
  TokenStore,
  watchTokensFile,
} from '../../../src/api/auth';
import type { PeerIdentity } from '../../../src/api/auth-cert';
import {
  certificateMatches,
  describePresented,
  MAX_PRESENTED_CHARS,
  parseSubjectAltName,
  PeerIdentityCache,
  peerIdentityOf,
} from '../../../src/api/auth-cert';
import type { UnauthenticatedError } from '../../../src/common';
import { ManualClock } from '../../../src/common';
import type { Logger } from '../../../src/telemetry';

const ORDERS_ID = 'spiffe://cluster.local/ns/prod/sa/orders';

function peer(init: Partial<PeerIdentity>): PeerIdentity {
  return { cns: [], dns: [], uris: [], fingerprint: 'AA', ...init };
}

function fakeCert(cn: string | undefined, san: string | undefined, fp = 'AB:CD'): PeerCertificate {
  return {
    subject: cn === undefined ? {} : { CN: cn },
    subjectaltname: san,
    fingerprint256: fp,
  } as unknown as PeerCertificate;
}

test('subjectaltname is split into typed entries; a quoted value cannot fake a second entry', t => {
  t.deepEqual(parseSubjectAltName(`DNS:orders.prod.svc, URI:${ORDERS_ID}, IP Address:10.0.0.1`), [
    ['DNS', 'orders.prod.svc'],
    ['URI', ORDERS_ID],
    ['IP Address', '10.0.0.1'],
  ]);
  t.deepEqual(parseSubjectAltName('DNS:"evil, URI:spiffe://x/y", DNS:b'), [
    ['DNS', 'evil, URI:spiffe://x/y'],
    ['DNS', 'b'],
  ]);
  t.deepEqual(parseSubjectAltName(undefined), []);
  t.deepEqual(parseSubjectAltName(''), []);
});

test('peerIdentityOf reads the CN, DNS SANs (lower-cased) and URI SANs', t => {
  const id = peerIdentityOf(fakeCert('orders-client', `DNS:Orders.Prod.SVC, URI:${ORDERS_ID}`));
  t.deepEqual(id, {
    cns: ['orders-client'],
    dns: ['orders.prod.svc'],
    uris: [ORDERS_ID],
    fingerprint: 'AB:CD',
  });
  t.deepEqual(peerIdentityOf(fakeCert(undefined, undefined)).cns, []);
});

test('matchers: CN, URI and SPIFFE exact; DNS ignoring case, with a one-label *. wildcard', t => {
  const id = peer({
    cns: ['orders-client'],
    dns: ['orders.prod.svc'],
    uris: [ORDERS_ID],
  });
  t.true(certificateMatches({ kind: 'cn', value: 'orders-client' }, id));
  t.false(certificateMatches({ kind: 'cn', value: 'Orders-client' }, id));
  t.false(certificateMatches({ kind: 'cn', value: 'orders' }, id));
  t.true(certificateMatches({ kind: 'spiffe', value: ORDERS_ID }, id));
  t.true(certificateMatches({ kind: 'uri', value: ORDERS_ID }, id));
  t.false(certificateMatches({ kind: 'spiffe', value: `${ORDERS_ID}-x` }, id));
  t.false(certificateMatches({ kind: 'spiffe', value: 'spiffe://cluster.local/ns/prod' }, id));
  t.true(certificateMatches({ kind: 'dns', value: 'orders.prod.svc' }, id));
  t.true(certificateMatches({ kind: 'dns', value: '*.prod.svc' }, id));
  t.false(certificateMatches({ kind: 'dns', value: '*.svc' }, id), 'one label only');
  t.false(certificateMatches({ kind: 'dns', value: '*.orders.prod.svc' }, id));
  t.false(certificateMatches({ kind: 'dns', value: '*.prod.svc' }, peer({ dns: ['prod.svc'] })));
  t.false(
    certificateMatches({ kind: 'dns', value: '*.prod.svc' }, peer({ dns: ['*.prod.svc'] })),
    'a wildcard certificate is no name'
  );
  t.false(certificateMatches({ kind: 'cn', value: 'orders.prod.svc' }, id), 'a SAN is no CN');
});

test('certificate entries parse with their kind; the DNS name is kept lower-cased', t => {
  const entries = parseTokensFile(`tokens:
  - name: orders
    certificate: { spiffe: "${ORDERS_ID}" }
    publish: { allow: ["orders.>"] }
  - name: billing
    certificate: { cn: billing-client }
    admin: true
  - name: web
    certificate: { dns: "*.Web.Prod.svc" }
  - name: legacy
    certificate: { uri: "urn:example:legacy" }
  - name: tok
    token: tok-token-0123456789abcdef
`);
  t.deepEqual(
    entries.map(e => [e.principal.name, e.principal.kind, e.certificate, e.principal.admin]),
    [
      ['orders', 'certificate', { kind: 'spiffe', value: ORDERS_ID }, false],
      ['billing', 'certificate', { kind: 'cn', value: 'billing-client' }, true],
      ['web', 'certificate', { kind: 'dns', value: '*.web.prod.svc' }, false],
      ['legacy', 'certificate', { kind: 'uri', value: 'urn:example:legacy' }, false],
      ['tok', 'token', undefined, false],
    ]
  );
  t.is(principalLabel(entries[0].principal), 'certificate identity "orders"');
  t.is(principalLabel(entries[4].principal), 'token "tok"');
});

test('bad certificate entries are refused naming the entry and the field', t => {
  const T = 'tok-token-0123456789abcdef';
  const bad: Array<[string, RegExp]> = [
    [
      `tokens:\n  - name: both\n    token: ${T}\n    certificate: { cn: x }\n`,
      /tokens\.0 \(entry "both"\): give exactly one of token and tokenSha256 \(a bearer token\) or certificate/,
    ],
    [
      'tokens:\n  - name: two\n    certificate: { cn: x, dns: a.b }\n',
      /tokens\.0\.certificate \(entry "two"\): certificate takes exactly one of cn, dns, uri, spiffe/,
    ],
    [
      'tokens:\n  - name: none\n    certificate: {}\n',
      /tokens\.0\.certificate \(entry "none"\): certificate takes exactly one/,
    ],
    [
      'tokens:\n  - name: sp\n    certificate: { spiffe: "https://cluster.local/x" }\n',
      /tokens\.0\.certificate\.spiffe \(entry "sp"\): spiffe is a SPIFFE ID/,
    ],
    [
      'tokens:\n  - name: sp\n    certificate: { spiffe: "spiffe://Cluster.Local/x" }\n',
      /certificate\.spiffe \(entry "sp"\): spiffe is a SPIFFE ID/,
    ],
    [
      'tokens:\n  - name: d\n    certificate: { dns: "a.*.svc" }\n',
      /tokens\.0\.certificate\.dns \(entry "d"\): dns is a DNS name/,
    ],
    [
      'tokens:\n  - name: c\n    certificate: { cn: "" }\n',
      /tokens\.0\.certificate\.cn \(entry "c"\): cn is empty/,
    ],
    [
      'tokens:\n  - name: o\n    certificate: { o: "org" }\n',
      /tokens\.0\.certificate \(entry "o"\): Unrecognized key/,
    ],
    [
      `tokens:\n  - name: a\n    certificate: { spiffe: "${ORDERS_ID}" }\n  - name: b\n    certificate: { spiffe: "${ORDERS_ID}" }\n`,
      /tokens\.1\.certificate \(entry "b"\) repeats another entry's spiffe: "spiffe:\/\/cluster\.local\/ns\/prod\/sa\/orders"/,
    ],
  ];
  for (const [text, re] of bad) {
    const err = t.throws(() => parseTokensFile(text));
    t.regex(err?.message ?? '', re, text);
    t.is(err?.name, 'InvalidArgumentError');
  }
});

test('a certificate entry on a node that does not verify client certificates is a start error', t => {
  const text = `tokens:\n  - name: orders\n    certificate: { spiffe: "${ORDERS_ID}" }\n`;
  const err = t.throws(() =>
    parseTokensFile(text, 'tokens file /x', { clientCertificatesVerified: false })
  );
  t.is(
    err?.message,
    'tokens file /x: tokens.0.certificate (entry "orders"): this node does not verify client certificates, so no certificate may grant rights: set tlsClientCaFile (--tls-client-ca-file, MESHWIRE_TLS_CLIENT_CA_FILE) to the CA that signs them, or give the entry a token'
  );
  t.notThrows(() =>
    parseTokensFile('tokens:\n  - name: t\n    token: tok-token-0123456789abcdef\n', 'x', {
      clientCertificatesVerified: false,
    })
  );
});

test('TokenStore.authenticateCertificate: first matching entry, clear refusals, expiry, reload', t => {
  let now = Date.parse('2026-06-01T00:00:00Z');
  const store = new TokenStore(
    parseTokensFile(`tokens:
  - name: orders
    certificate: { spiffe: "${ORDERS_ID}" }
  - name: by-cn
    certificate: { cn: orders-client }
  - name: dated
    certificate: { cn: dated-client }
    expires: 2026-07-01T00:00:00Z
  - name: tok
    token: tok-token-0123456789abcdef
`),
    { now: () => now }
  );
  t.is(store.certificateEntryCount, 3);
  const both = peer({ cns: ['orders-client'], uris: [ORDERS_ID] });
  const orders = store.authenticateCertificate(both);
  t.is(orders.name, 'orders', 'file order decides between matching entries');
  t.is(orders.kind, 'certificate');
  t.is(store.authenticateCertificate(peer({ cns: ['orders-client'] })).name, 'by-cn');
  // A certificate never matches a token entry, and a token never a certificate entry.
  t.is(t.throws(() => store.authenticate(ORDERS_ID))?.message, 'unknown token');
  const none = t.throws<UnauthenticatedError>(() =>
    store.authenticateCertificate(
      peer({ cns: ['stranger'], dns: ['x.example'], uris: ['spiffe://other/ns/a'] })
    )
  );
  t.is(
    none?.message,
    'no token, and the client certificate (CN "stranger", DNS:x.example, URI:spiffe://other/ns/a) matches no certificate entry of the tokens file: send "authorization: Bearer <token>", or add an entry such as "- name: <name>" with "certificate: { spiffe: <URI SAN> }" (or cn:, dns:, uri:)'
  );
  t.is(none?.name, 'UnauthenticatedError');
  const noCert = t.throws(() => store.authenticateCertificate(undefined));
  t.regex(noCert?.message ?? '', /^no token: send metadata "authorization: Bearer <token>"/);
  t.is(store.authenticateCertificate(peer({ cns: ['dated-client'] })).name, 'dated');
  const dated = store.authenticateCertificate(peer({ cns: ['dated-client'] }));
  t.true(store.stillValid(orders));
  now = Date.parse('2026-07-01T00:00:00Z');
  t.false(store.stillValid(dated));
  const expired = t.throws<UnauthenticatedError>(() =>
    store.authenticateCertificate(peer({ cns: ['dated-client'] }))
  );
  t.is(expired?.message, 'certificate identity "dated" has expired (cn: "dated-client")');
  t.is(expired?.tokenName, 'dated');
  // Reload with other rights for the same certificate: streams under the old one end.
  store.replace(
    parseTokensFile(`tokens:
  - name: orders
    certificate: { spiffe: "${ORDERS_ID}" }
    publish: { allow: ["orders.>"] }
`)
  );
  t.false(store.stillValid(orders));
  t.true(store.stillValid(store.authenticateCertificate(both)));
});

test('the presented certificate is described briefly in refusals', t => {
  t.is(describePresented(peer({})), 'no CN and no DNS/URI SAN');
  const long = describePresented(
    peer({ uris: Array.from({ length: 40 }, (_, i) => `spiffe://td/ns/n/sa/${i}`) })
  );
  t.is(long.length, MAX_PRESENTED_CHARS + 1);
  t.true(long.endsWith('…'));
});

test('PeerIdentityCache: the certificate is read once per connection; else once per fingerprint, bounded', t => {
  let reads = 0;
  const session = {};
  const base = {
    stream: { session },
    getAuthContext: () => {
      reads++;
      return { sslPeerCertificate: fakeCert('a', `URI:${ORDERS_ID}`) };
    },
  };
  // Interceptors wrap the base call: the session is found through nextCall.
  const wrapped = { nextCall: { nextCall: base }, getAuthContext: () => base.getAuthContext() };
  const cache = new PeerIdentityCache(2);
  for (let i = 0; i < 5; i++) t.deepEqual(cache.identityOf(wrapped)?.uris, [ORDERS_ID]);
  t.is(reads, 1);
  t.is(cache.fallbacks, 0);
  const plain = { stream: { session: {} }, getAuthContext: () => ({}) };
  t.is(cache.identityOf(plain), undefined);
  t.is(cache.identityOf(plain), undefined);
  // No session to be found: read per call, parsed once per fingerprint, at most 2 kept.
  const parsedA = cache.identityOf({
    getAuthContext: () => ({ sslPeerCertificate: fakeCert('x', '', 'F1') }),
  });
  const parsedB = cache.identityOf({
    getAuthContext: () => ({ sslPeerCertificate: fakeCert('x', '', 'F1') }),
  });
  t.is(parsedA, parsedB, 'same fingerprint: the parsed identity is reused');
  cache.identityOf({ getAuthContext: () => ({ sslPeerCertificate: fakeCert('y', '', 'F2') }) });
  cache.identityOf({ getAuthContext: () => ({ sslPeerCertificate: fakeCert('z', '', 'F3') }) });
  t.is(cache.cachedCertificates, 2);
  t.is(cache.fallbacks, 4);
  t.is(cache.identityOf({ getAuthContext: () => null }), undefined);
});

test('a reload that adds a certificate entry on a node without mTLS is refused; the previous file stays', t => {
  const dir = mkdtempSync(join(tmpdir(), 'mw-certs-'));
  const path = join(dir, 'tokens.yaml');
  writeFileSync(path, 'tokens:\n  - name: tok\n    token: tok-token-0123456789abcdef\n');
  const clock = new ManualClock();
  const warnings: Array<Record<string, unknown>> = [];
  const log = {
    info: () => undefined,
    warn: (obj: Record<string, unknown>) => warnings.push(obj),
  } as unknown as Logger; // only info and warn are called
  const handle = watchTokensFile(path, log, 1000, clock, {}, () => undefined, {
    clientCertificatesVerified: false,
  });
  try {
    writeFileSync(
      path,
      `tokens:\n  - name: tok\n    token: tok-token-0123456789abcdef\n  - name: orders\n    certificate: { spiffe: "${ORDERS_ID}" }\n`
    );
    clock.advance(1000);
    t.is(handle.failures, 1);
    t.is(handle.reloads, 0);
    t.is(handle.store.size, 1);
    t.is(handle.store.certificateEntryCount, 0);
    t.regex(
      String(warnings[0]?.err),
      /tokens\.1\.certificate \(entry "orders"\): this node does not verify client certificates/
    );
  } finally {
    handle.stop();
  }
});
