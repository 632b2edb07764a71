import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { isLoopbackHost } from '../../../src/common';
import { loadConfig, peerSeeds } from '../../../src/app';

const dir = mkdtempSync(join(tmpdir(), 'mw-config-'));

test('defaults bind to loopback with the documented ports', t => {
  const cfg = loadConfig({ argv: [], env: {} });
  t.deepEqual(cfg.grpcListen, { host: '127.0.0.1', port: 7400 });
  t.deepEqual(cfg.peerListen, { host: '127.0.0.1', port: 7401 });
  t.deepEqual(cfg.metricsListen, { host: '127.0.0.1', port: 9464 });
  t.is(cfg.drainTimeoutMs, 10000);
  t.is(cfg.maxMessageBytes, 8388608);
  t.is(cfg.logLevel, 'info');
  t.true(cfg.nodeId.length > 0);
});

test('precedence: flags > environment > file > defaults', t => {
  const file = join(dir, 'p.yaml');
  writeFileSync(
    file,
    'nodeId: from-file\ndrainTimeoutMs: 111\nlogLevel: debug\nmaxMessageBytes: 2048\n'
  );
  const cfg = loadConfig({
    argv: ['--config', file, '--node-id', 'from-flag'],
    env: { MESHWIRE_NODE_ID: 'from-env', MESHWIRE_DRAIN_TIMEOUT_MS: '222' },
  });
  t.is(cfg.nodeId, 'from-flag');
  t.is(cfg.drainTimeoutMs, 222);
  t.is(cfg.logLevel, 'debug');
  t.is(cfg.aeadBackend, 'auto');
  t.is(cfg.udpDriver, 'auto');
  t.is(loadConfig({ argv: ['--udp-driver', 'dgram'], env: {} }).udpDriver, 'dgram');
  t.is(loadConfig({ argv: [], env: { MESHWIRE_UDP_DRIVER: 'batch' } }).udpDriver, 'batch');
  t.is(cfg.maxDatagramSize, 1472);
  t.is(loadConfig({ argv: ['--max-datagram-size', '8972'], env: {} }).maxDatagramSize, 8972);
  t.is(loadConfig({ argv: [], env: { MESHWIRE_AEAD_BACKEND: 'node' } }).aeadBackend, 'node');
  t.is(cfg.maxMessageBytes, 2048);
});

test('MESHWIRE_CONFIG names a JSON config file', t => {
  const file = join(dir, 'c.json');
  writeFileSync(
    file,
    JSON.stringify({ grpcListen: '0.0.0.0:7500', peers: { b: ['10.0.0.2:7401'] } })
  );
  const cfg = loadConfig({ env: { MESHWIRE_CONFIG: file } });
  t.deepEqual(cfg.grpcListen, { host: '0.0.0.0', port: 7500 });
  t.deepEqual(cfg.peers, { b: [{ host: '10.0.0.2', port: 7401 }] });
});

const bad: Array<[string, Record<string, string>, string[], RegExp]> = [
  [
    'integer',
    { MESHWIRE_DRAIN_TIMEOUT_MS: 'abc' },
    [],
    /drainTimeoutMs = "abc" \(from MESHWIRE_DRAIN_TIMEOUT_MS\).*integer from 0 to 3600000/,
  ],
  [
    'range',
    {},
    ['--max-message-bytes', '0'],
    /maxMessageBytes = "0" \(from --max-message-bytes\).*from 1 to/,
  ],
  ['log level', { MESHWIRE_LOG_LEVEL: 'loud' }, [], /logLevel = "loud".*one of trace, debug, info/],
  [
    'datagram size',
    { MESHWIRE_MAX_DATAGRAM_SIZE: '70000' },
    [],
    /maxDatagramSize = "70000".*from 256 to 65507/,
  ],
  [
    'AEAD backend',
    {},
    ['--aead-backend', 'boringssl'],
    /aeadBackend = "boringssl" \(from --aead-backend\).*one of auto, openssl, libsodium, node/,
  ],
  [
    'UDP driver',
    { MESHWIRE_UDP_DRIVER: 'uring' },
    [],
    /udpDriver = "uring" \(from MESHWIRE_UDP_DRIVER\).*one of auto, batch, dgram/,
  ],
  ['address', {}, ['--grpc-listen', 'nohost'], /grpcListen = "nohost".*host:port/],
  ['port', {}, ['--peer-listen', '127.0.0.1:70000'], /peerListen.*port must be a number/],
  ['peers', { MESHWIRE_PEERS: 'b' }, [], /peers = "b".*id=host:port/],
  [
    'secret file',
    { MESHWIRE_CLUSTER_SECRET_FILE: '/nonexistent/x' },
    [],
    /clusterSecretFile.*existing file/,
  ],
  ['unknown flag', {}, ['--no-such-flag', '1'], /unknown option/],
  [
    'tls half',
    {},
    ['--tls-cert-file', __filename],
    /tlsCertFile and tlsKeyFile must be set together/,
  ],
];
for (const [name, env, argv, re] of bad) {
  test(`bad ${name} stops with one line naming key, value and rule`, t => {
    const err = t.throws(() => loadConfig({ argv, env }));
    t.is(err?.name, 'InvalidArgumentError');
    t.regex(err?.message ?? '', re);
    t.false((err?.message ?? '').includes('\n'));
  });
}

test('unknown key in a config file is rejected', t => {
  const file = join(dir, 'u.yaml');
  writeFileSync(file, 'nodeid: typo\n');
  const err = t.throws(() => loadConfig({ argv: ['--config', file], env: {} }));
  t.regex(err?.message ?? '', /unknown key "nodeid"/);
});

test('peer seeds: static peers and DNS-templated ids, never itself', t => {
  const secret = join(dir, 'seeds-secret');
  writeFileSync(secret, 'a cluster secret for this test\n');
  const cfg = loadConfig({
    env: {
      MESHWIRE_NODE_ID: 'meshwire-0',
      MESHWIRE_PEER_LISTEN: '0.0.0.0:7401',
      MESHWIRE_CLUSTER_SECRET_FILE: secret,
      MESHWIRE_PEER_DNS: '{id}.meshwire-headless.{namespace}.svc.cluster.local',
      MESHWIRE_PEER_IDS: 'meshwire-0,meshwire-1,meshwire-2',
      MESHWIRE_NAMESPACE: 'prod',
      MESHWIRE_PEERS: 'x=10.1.1.1:7000,x=10.1.1.2:7000',
    },
  });
  t.deepEqual(peerSeeds(cfg), [
    { id: 'x', host: '10.1.1.1', port: 7000, source: 'static' },
    { id: 'x', host: '10.1.1.2', port: 7000, source: 'static' },
    {
      id: 'meshwire-1',
      host: 'meshwire-1.meshwire-headless.prod.svc.cluster.local',
      port: 7401,
      source: 'dns',
    },
    {
      id: 'meshwire-2',
      host: 'meshwire-2.meshwire-headless.prod.svc.cluster.local',
      port: 7401,
      source: 'dns',
    },
  ]);
});

test('unresolvedQueueBytes: default, environment, and a value below the minimum', t => {
  t.is(loadConfig({ env: {} }).unresolvedQueueBytes, 16777216);
  t.is(loadConfig({ env: { MESHWIRE_UNRESOLVED_QUEUE_BYTES: '4096' } }).unresolvedQueueBytes, 4096);
  const err = t.throws(() => loadConfig({ argv: ['--unresolved-queue-bytes', '10'], env: {} }));
  t.regex(err?.message ?? '', /unresolvedQueueBytes = "10" \(from --unresolved-queue-bytes\)/);
});

test('address target keys: defaults are on, 256 senders, 60 s idle, any address', t => {
  const cfg = loadConfig({ argv: [], env: {} });
  t.is(cfg.addressTargets, true);
  t.is(cfg.maxAddressSenders, 256);
  t.is(cfg.addressSenderIdleMs, 60000);
  t.deepEqual(cfg.addressTargetCidrs, [
    { address: '0.0.0.0', prefix: 0, family: 4 },
    { address: '::', prefix: 0, family: 6 },
  ]);
});

test('address target keys from flags, environment and a file (a YAML list of CIDRs)', t => {
  const flags = loadConfig({
    argv: ['--address-targets', 'false', '--max-address-senders', '8'],
    env: {
      MESHWIRE_ADDRESS_SENDER_IDLE_MS: '1500',
      MESHWIRE_ADDRESS_TARGET_CIDRS: '10.0.0.0/8, fd00::/8',
    },
  });
  t.is(flags.addressTargets, false);
  t.is(flags.maxAddressSenders, 8);
  t.is(flags.addressSenderIdleMs, 1500);
  t.deepEqual(flags.addressTargetCidrs, [
    { address: '10.0.0.0', prefix: 8, family: 4 },
    { address: 'fd00::', prefix: 8, family: 6 },
  ]);
  const file = join(dir, 'addr.yaml');
  writeFileSync(file, 'addressTargets: true\naddressTargetCidrs:\n  - 192.168.0.0/16\n  - "::1"\n');
  const fromFile = loadConfig({ argv: ['--config', file], env: {} });
  t.is(fromFile.addressTargets, true);
  t.deepEqual(fromFile.addressTargetCidrs, [
    { address: '192.168.0.0', prefix: 16, family: 4 },
    { address: '::1', prefix: 128, family: 6 },
  ]);
});

const badAddressKeys: Array<[string, string[], RegExp]> = [
  [
    'addressTargets',
    ['--address-targets', 'maybe'],
    /^invalid config: addressTargets = "maybe" \(from --address-targets\): .*allowed: true or false$/,
  ],
  [
    'maxAddressSenders',
    ['--max-address-senders', '0'],
    /maxAddressSenders = "0" \(from --max-address-senders\).*an integer from 1 to 65536/,
  ],
  [
    'addressSenderIdleMs',
    ['--address-sender-idle-ms', '5'],
    /addressSenderIdleMs = "5" \(from --address-sender-idle-ms\).*an integer from 100 to 86400000/,
  ],
  [
    'addressTargetCidrs prefix',
    ['--address-target-cidrs', '10.0.0.0/33'],
    /addressTargetCidrs = "10\.0\.0\.0\/33" \(from --address-target-cidrs\): .*prefix length must be a number from 0 to 32.*allowed: comma-separated CIDRs/,
  ],
  [
    'addressTargetCidrs name',
    ['--address-target-cidrs', 'example.com/8'],
    /addressTargetCidrs = "example\.com\/8" .*not an IP address/,
  ],
  [
    'addressTargetCidrs empty',
    ['--address-target-cidrs', ','],
    /addressTargetCidrs = "," .*set addressTargets to false/,
  ],
];
for (const [name, argv, re] of badAddressKeys) {
  test(`bad ${name} stops with one line naming key, value and what is allowed`, t => {
    const err = t.throws(() => loadConfig({ argv, env: {} }));
    t.is(err?.name, 'InvalidArgumentError');
    t.regex(err?.message ?? '', re);
    t.false((err?.message ?? '').includes('\n'));
  });
}

test('the development secret is refused on a non-loopback peerListen (0.0.0.0, [::], an address, a name)', t => {
  for (const listen of ['0.0.0.0:0', '[::]:0', '10.1.2.3:7401', 'meshwire-0.example:7401']) {
    const err = t.throws(() => loadConfig({ argv: ['--peer-listen', listen], env: {} }));
    t.is(err?.name, 'InvalidArgumentError', listen);
    t.regex(err?.message ?? '', /clusterSecretFile .*MESHWIRE_CLUSTER_SECRET_FILE/, listen);
    t.notRegex(err?.message ?? '', /\n/, 'one line');
  }
  // loopback keeps the development secret (make run, tests); a secret file allows any address
  for (const listen of ['127.0.0.1:0', '[::1]:0', 'localhost:0', '127.8.9.10:0']) {
    t.notThrows(() => loadConfig({ argv: ['--peer-listen', listen], env: {} }), listen);
  }
  const secret = join(dir, 'secret');
  writeFileSync(secret, 'a cluster secret for this test\n');
  t.deepEqual(
    loadConfig({ argv: ['--peer-listen', '[::]:7401', '--cluster-secret-file', secret], env: {} })
      .peerListen,
    { host: '::', port: 7401 }
  );
});

test('isLoopbackHost: loopback only, never a wildcard', t => {
  for (const h of [
    '127.0.0.1',
    '127.255.0.9',
    '::1',
    '::ffff:127.0.0.1',
    'localhost',
    'LOCALHOST',
  ]) {
    t.true(isLoopbackHost(h), h);
  }
  for (const h of [
    '0.0.0.0',
    '::',
    '10.0.0.1',
    '::ffff:10.0.0.1',
    'fe80::1',
    'example.com',
    '128.0.0.1',
  ]) {
    t.false(isLoopbackHost(h), h);
  }
});
