import test from 'ava';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  SECRET_LIST_HEADER,
  SecretReloader,
  parseSecretFile,
  readClusterSecrets,
} from '../../../src/app/cluster-secrets';
import { loadConfig } from '../../../src/app';
import { ReplyTable, replyTokenKey } from '../../../src/node/reply-table';
import { DeadlineExceededError, systemClock } from '../../../src/common';

const dir = mkdtempSync(join(tmpdir(), 'meshwire-secrets-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const A = 'secret A, the one in use today';
const B = 'secret B, the one rotated to..';

test('a file without the header is one secret, byte for byte (binary, or text with its newline)', t => {
  const binary = Buffer.from([0, 1, 2, 0xff, 0x0a, 0x23, 0x20, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
  t.deepEqual(parseSecretFile('f', binary), [binary]);
  const text = Buffer.from(`${A}\n`);
  t.deepEqual(parseSecretFile('f', text), [text], 'the trailing newline is part of it, as before');
  t.throws(() => parseSecretFile('/x/secret', Buffer.from('too short\n')), {
    message: 'cluster secret file /x/secret: the secret is 10 bytes, at least 16 are needed',
  });
});

test('the list format: header, one secret per line, first sends, comments and blanks skipped', t => {
  const file = [
    SECRET_LIST_HEADER,
    '# the one we send with',
    `  ${B}  `,
    '',
    `base64:${Buffer.from(`${A}\n`).toString('base64')}`,
    '',
  ].join('\r\n');
  t.deepEqual(
    parseSecretFile('f', Buffer.from(file)).map(b => b.toString()),
    [B, `${A}\n`]
  );
});

test('list errors name the file and line', t => {
  const bad = (lines: string[]): string =>
    t.throws(() => parseSecretFile('/s', Buffer.from([SECRET_LIST_HEADER, ...lines].join('\n'))))
      ?.message ?? '';
  t.is(
    bad([A, 'short one']),
    'cluster secret file /s line 3: the secret is 9 bytes, at least 16 are needed'
  );
  t.is(
    bad(['base64:not*base64']),
    'cluster secret file /s line 2: not valid base64 after "base64:"'
  );
  t.is(
    bad(['# only a comment', '']),
    'cluster secret file /s: no secret after the "# meshwire cluster secrets" line'
  );
});

test('readClusterSecrets: repeats removed, at most 8, a directory in sorted name order', t => {
  const file = join(dir, 'list');
  writeFileSync(file, [SECRET_LIST_HEADER, A, B, A].join('\n'));
  t.deepEqual(readClusterSecrets({ clusterSecretFile: file })?.secrets.map(String), [A, B]);
  writeFileSync(
    file,
    [SECRET_LIST_HEADER, ...Array.from({ length: 9 }, (_, i) => `${A} ${i}`)].join('\n')
  );
  t.throws(() => readClusterSecrets({ clusterSecretFile: file }), {
    message: `cluster secrets in ${file}: 9 distinct secrets, at most 8 are accepted`,
  });
  t.is(readClusterSecrets({}), undefined, 'none configured: the development secret');

  // a Kubernetes Secret volume: keys are links to ..data/<key>, ..data a link to a dated dir
  const mount = join(dir, 'mount');
  const v1 = join(mount, '..2026_v1');
  mkdirSync(v1, { recursive: true });
  writeFileSync(join(v1, 'current'), A);
  writeFileSync(join(v1, 'next'), B);
  symlinkSync('..2026_v1', join(mount, '..data'));
  symlinkSync('..data/current', join(mount, 'current'));
  symlinkSync('..data/next', join(mount, 'next'));
  t.deepEqual(readClusterSecrets({ clusterSecretDir: mount })?.secrets.map(String), [A, B]);
  // a key's link left dangling for a moment while Kubernetes removes the key: skipped
  symlinkSync('..data/removed', join(mount, 'removed'));
  t.deepEqual(readClusterSecrets({ clusterSecretDir: mount })?.secrets.map(String), [A, B]);

  const empty = join(dir, 'empty');
  mkdirSync(empty);
  t.throws(() => readClusterSecrets({ clusterSecretDir: empty }), {
    message: `cluster secret directory ${empty} holds no secret file`,
  });
});

test('SecretReloader: applies a changed set (Kubernetes link swap), refuses a bad one once and keeps the old', t => {
  const mount = join(dir, 'swap');
  const v1 = join(mount, '..v1');
  mkdirSync(v1, { recursive: true });
  writeFileSync(join(v1, 'current'), A);
  symlinkSync('..v1', join(mount, '..data'));
  symlinkSync('..data/current', join(mount, 'current'));
  const cfg = { clusterSecretDir: mount };
  const applied: string[][] = [];
  const warnings: string[] = [];
  const initial = readClusterSecrets(cfg);
  if (!initial) return t.fail();
  const r = new SecretReloader({
    config: cfg,
    initial,
    apply: s => applied.push(s.map(String)),
    log: { info: () => undefined, warn: (o: object) => warnings.push(JSON.stringify(o)) },
  });
  t.false(r.check(), 'unchanged');
  // step 1 the Kubernetes way: a new dated dir, ..data swapped to it atomically
  const v2 = join(mount, '..v2');
  mkdirSync(v2);
  writeFileSync(join(v2, 'current'), A);
  writeFileSync(join(v2, 'next'), B);
  symlinkSync('..v2', join(mount, '..data_tmp'));
  renameSync(join(mount, '..data_tmp'), join(mount, '..data'));
  symlinkSync('..data/next', join(mount, 'next'));
  t.true(r.check());
  t.deepEqual(applied, [[A, B]]);
  // a bad file: refused, counted once however often it is polled
  writeFileSync(join(v2, 'next'), 'short');
  t.false(r.check());
  t.false(r.check());
  t.deepEqual(r.failures, { unreadable: 0, invalid: 1 });
  t.regex(warnings[0], /next: the secret is 5 bytes/);
  // an apply that throws (e.g. the transport refusing the set) is refused too
  writeFileSync(join(v2, 'next'), B);
  const refusing = new SecretReloader({
    config: cfg,
    initial,
    apply: () => {
      throw new Error('no');
    },
    log: { info: () => undefined, warn: () => undefined },
  });
  t.false(refusing.check());
  t.deepEqual(refusing.failures, { unreadable: 1, invalid: 0 });
  t.is(r.reloads, 1);
  rmSync(join(mount, 'next'));
  rmSync(join(mount, 'current'));
  t.false(r.check());
  t.is(r.failures.invalid, 2, 'an emptied directory is refused');
});

test('clusterSecretDir: a config key; with clusterSecretFile it is refused', t => {
  const file = join(dir, 'one');
  writeFileSync(file, A);
  const secrets = join(dir, 'secrets-dir');
  mkdirSync(secrets);
  t.is(
    loadConfig({ argv: ['--cluster-secret-dir', secrets, '--peer-listen', '0.0.0.0:0'], env: {} })
      .clusterSecretDir,
    secrets
  );
  t.throws(() => loadConfig({ argv: ['--cluster-secret-dir', file], env: {} }), {
    message: `invalid config: clusterSecretDir = ${JSON.stringify(file)} (from --cluster-secret-dir): not an existing directory; allowed: a path to an existing directory`,
  });
  t.throws(
    () =>
      loadConfig({
        argv: ['--cluster-secret-dir', secrets, '--cluster-secret-file', file],
        env: {},
      }),
    {
      message:
        'invalid config: clusterSecretFile and clusterSecretDir are both set: use one (a file listing several secrets, or a directory of secret files)',
    }
  );
});

test('reply tokens: made under A, verified under {B,A}, refused under {B}; new ones are made with the first key', t => {
  const issuer = new ReplyTable(systemClock, 'n1', replyTokenKey(Buffer.from(A)));
  const { token, promise, cancel } = issuer.register(1000, () => new DeadlineExceededError('t'));
  promise.catch(() => undefined);
  t.teardown(() => cancel(new Error('done')));
  const rotating = new ReplyTable(
    systemClock,
    'n2',
    [Buffer.from(B), Buffer.from(A)].map(replyTokenKey)
  );
  t.deepEqual(rotating.parse(token)?.issuer, 'n1');
  const rotated = new ReplyTable(systemClock, 'n3', replyTokenKey(Buffer.from(B)));
  t.is(rotated.parse(token), undefined);
  // the issuer switches to B first: its new tokens verify where only B is known
  issuer.setKeys([Buffer.from(B), Buffer.from(A)].map(replyTokenKey));
  const next = issuer.register(1000, () => new DeadlineExceededError('t'));
  next.promise.catch(() => undefined);
  t.teardown(() => next.cancel(new Error('done')));
  t.is(rotated.parse(next.token)?.issuer, 'n1');
  t.is(issuer.parse(token)?.issuer, 'n1', 'its old tokens still verify at the issuer');
  rotated.setKeys([replyTokenKey(Buffer.from(A))]);
  t.is(rotated.parse(token)?.issuer, 'n1', 'setKeys clears the cache of MACs');
});
