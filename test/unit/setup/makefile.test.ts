/**
 * The Makefile's set-up logic, in throwaway directories (nothing here builds or installs):
 * tsc runs only when a TypeScript source, a source directory, tsconfig or the lock file
 * changed (`make -n`, `make -q`); scripts/apt-deps.sh calls apt-get only as root and only
 * for what is missing (fake dpkg-query, apt-get and id on PATH).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import test from 'ava';

const ROOT = join(__dirname, '..', '..', '..', '..');

function make(dir: string, args: string[]): { code: number; out: string } {
  const r = spawnSync('make', ['--no-print-directory', ...args], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 15_000,
  });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** A tree shaped like the repository with every output newer than its inputs. */
function fakeRepo(): { dir: string; touch(rel: string, ageSeconds: number): void } {
  const dir = mkdtempSync(join(tmpdir(), 'mw-make-'));
  copyFileSync(join(ROOT, 'Makefile'), join(dir, 'Makefile'));
  const now = Date.now() / 1000;
  const touch = (rel: string, ageSeconds: number): void => {
    const p = join(dir, rel);
    mkdirSync(dirname(p), { recursive: true });
    if (!existsSync(p)) writeFileSync(p, '');
    utimesSync(p, now - ageSeconds, now - ageSeconds);
  };
  const inputs = [
    'src/cli/main.ts',
    'test/unit/x.test.ts',
    'bench/local/run.ts',
    'tsconfig.json',
    'package.json',
    'package-lock.json',
    'native/udp_batch.c',
    'native/aead_openssl.c',
    'native/napi_util.h',
  ];
  for (const f of inputs) touch(f, 1000);
  for (const d of ['src', 'src/cli', 'test', 'test/unit', 'bench', 'bench/local']) {
    utimesSync(join(dir, d), now - 1000, now - 1000);
  }
  for (const f of [
    'node_modules/.installed',
    'build/udp_batch.node',
    'build/aead_openssl.node',
    'dist/.tsc-stamp',
  ]) {
    touch(f, 500);
  }
  return { dir, touch };
}

const TSC = 'node_modules/.bin/tsc -p tsconfig.json';

test('make build/run with nothing changed do not run tsc; a changed or added source does', t => {
  const repo = fakeRepo();
  t.is(make(repo.dir, ['-q', 'dist/.tsc-stamp']).code, 0, 'stamp up to date');
  const build = make(repo.dir, ['-n', 'build']);
  t.is(build.code, 0, build.out);
  t.false(build.out.includes(TSC), build.out);
  t.false(build.out.includes('npm ci'), build.out);
  const run = make(repo.dir, ['-n', 'run']);
  t.false(run.out.includes(TSC), run.out);
  t.regex(run.out, /bash scripts\/apt-deps\.sh build/);
  t.regex(run.out, /dist\/src\/cli\/main\.js serve/);

  repo.touch('src/cli/main.ts', 0);
  t.not(make(repo.dir, ['-q', 'dist/.tsc-stamp']).code, 0, 'a newer source: out of date');
  t.true(make(repo.dir, ['-n', 'build']).out.includes(TSC));
});

test('an added source file (its directory changed), tsconfig or the lock file rebuild too', t => {
  for (const change of ['added', 'tsconfig.json', 'package-lock.json']) {
    const repo = fakeRepo();
    if (change === 'added') {
      // an old mtime on the file itself: only its directory says something changed
      repo.touch('test/unit/new.test.ts', 2000);
    } else {
      repo.touch(change, 0);
    }
    t.true(make(repo.dir, ['-n', 'build']).out.includes(TSC), change);
  }
});

test('make test, run and bench install their Debian packages first', t => {
  const repo = fakeRepo();
  t.regex(make(repo.dir, ['-n', 'test']).out.split('\n')[0], /apt-deps\.sh test$/);
  t.regex(make(repo.dir, ['-n', 'bench']).out, /apt-deps\.sh bench/);
  t.regex(make(repo.dir, ['-n', 'bench-rpc']).out, /apt-deps\.sh bench/);
});

/** Runs scripts/apt-deps.sh with fake dpkg-query, apt-get and id. */
function aptDeps(
  group: string,
  installed: string[],
  uid: number
): { code: number; out: string; aptCalls: string[] } {
  const bin = mkdtempSync(join(tmpdir(), 'mw-apt-'));
  const calls = join(bin, 'calls');
  writeFileSync(calls, '');
  const script = (name: string, body: string): void => {
    writeFileSync(join(bin, name), `#!/usr/bin/env bash\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  // dpkg-query -W -f=FORMAT PACKAGE: the package is $3
  script(
    'dpkg-query',
    `for p in ${installed.join(' ')}; do [[ "$3" == "$p" ]] && { printf 'install ok installed'; exit 0; }; done; exit 1`
  );
  script('apt-get', `echo "apt-get $*" >> ${calls}`);
  script('id', `echo ${uid}`);
  const r = spawnSync('bash', [join(ROOT, 'scripts', 'apt-deps.sh'), group], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` },
    timeout: 15_000,
  });
  const aptCalls = readFileSync(calls, 'utf8').split('\n').filter(Boolean);
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}`, aptCalls };
}

const ALL = [
  'gcc',
  'libc6-dev',
  'make',
  'python3-grpcio',
  'python3-protobuf',
  'protobuf-compiler',
  'dnsmasq-base',
  'nftables',
  'iproute2',
  'ethtool',
  'openssl',
  'nats-server',
];

test('apt-deps.sh: nothing to do when all is installed, even as non-root', t => {
  for (const group of ['build', 'test', 'bench', 'all']) {
    const r = aptDeps(group, ALL, 1000);
    t.is(r.code, 0, r.out);
    t.deepEqual(r.aptCalls, [], group);
  }
});

test('apt-deps.sh: missing packages as non-root: named, exit 1, no apt-get', t => {
  const r = aptDeps(
    'test',
    ALL.filter(p => p !== 'python3-grpcio' && p !== 'dnsmasq-base'),
    1000
  );
  t.is(r.code, 1);
  t.regex(r.out, /missing Debian packages: python3-grpcio dnsmasq-base/);
  t.regex(r.out, /needs root/);
  t.deepEqual(r.aptCalls, []);
});

test('apt-deps.sh: as root installs exactly what the group misses', t => {
  const r = aptDeps(
    'bench',
    ALL.filter(p => p !== 'nats-server' && p !== 'python3-grpcio'),
    0
  );
  t.is(r.code, 0, r.out);
  t.deepEqual(r.aptCalls, ['apt-get update -qq', 'apt-get install -y -qq nats-server']);
  const unknown = aptDeps('nonsense', ALL, 0);
  t.is(unknown.code, 2);
  t.regex(execFileSync('bash', ['-n', join(ROOT, 'scripts', 'apt-deps.sh')]).toString(), /^$/);
});
