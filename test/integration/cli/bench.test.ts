/** `meshwire bench` against a real node (`meshwire serve`), its output parsed. */
import { spawn } from 'node:child_process';
import test from 'ava';
import { freePorts } from '../../helpers/ports';
import type { NodeProcess } from '../../helpers/processes';
import { CLI, listenFlags, runCli, spawnNode } from '../../helpers/processes';
import { ADMIN_TOKEN, startMtlsNodeForCli } from '../security/helpers';

const run = (args: string[], timeoutMs = 60_000) => runCli(args, { timeoutMs });

let node: NodeProcess | undefined;
let server = '';

test.before(async () => {
  const [g, p, m] = await freePorts(3);
  node = await spawnNode('bench-node', [...listenFlags(g, p, m)]);
  server = `127.0.0.1:${g}`;
});

test.after.always(async () => {
  await node?.kill();
});

interface Latency {
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

function checkLatency(t: { true(v: boolean, m?: string): void }, l: Latency, count: number): void {
  t.true(l.count === count, `latency count ${l.count} vs ${count}`);
  t.true(
    0 < l.p50Ms && l.p50Ms <= l.p90Ms && l.p90Ms <= l.p99Ms && l.p99Ms <= l.p999Ms,
    JSON.stringify(l)
  );
  t.true(l.p999Ms <= l.maxMs, JSON.stringify(l));
}

test.serial('bench pub --json: every subscriber gets every message sent', async t => {
  const r = await run([
    'bench',
    'pub',
    '-s',
    server,
    '--subject',
    'bench.a',
    '--msgs',
    '3000',
    '--pubs',
    '2',
    '--subs',
    '2',
    '--size',
    '64',
    '--json',
  ]);
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  t.is(lines.length, 1, 'one JSON object');
  const res = JSON.parse(lines[0]) as {
    kind: string;
    pub: { sent: number; msgsPerSec: number; mibPerSec: number };
    sub: { received: number; perSubscriber: number[]; dropped: number; latency: Latency };
  };
  t.is(res.kind, 'pub');
  t.is(res.pub.sent, 3000);
  t.deepEqual(res.sub.perSubscriber, [3000, 3000]);
  t.is(res.sub.received, 6000);
  t.is(res.sub.dropped, 0);
  t.true(res.pub.msgsPerSec > 0 && res.pub.mibPerSec > 0);
  checkLatency(t, res.sub.latency, 6000);
});

test.serial('bench pub with a queue group: the group gets each message once', async t => {
  const r = await run([
    'bench',
    'pub',
    '-s',
    server,
    '--subject',
    'bench.q',
    '--msgs',
    '2000',
    '--subs',
    '3',
    '--queue-group',
    'g',
    '--json',
  ]);
  t.is(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout) as { pub: { sent: number }; sub: { received: number } };
  t.is(res.pub.sent, 2000);
  t.is(res.sub.received, 2000);
});

test.serial('bench request --json: every request answered, with percentiles', async t => {
  const r = await run([
    'bench',
    'request',
    '-s',
    server,
    '--subject',
    'bench.r',
    '--msgs',
    '2000',
    '--concurrency',
    '16',
    '--responders',
    '2',
    '--json',
  ]);
  t.is(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout) as {
    sent: number;
    answered: number;
    failed: number;
    perResponder: number[];
    msgsPerSec: number;
    latency: Latency;
  };
  t.is(res.sent, 2000);
  t.is(res.answered, 2000);
  t.is(res.failed, 0);
  t.is(
    res.perResponder.reduce((a, b) => a + b, 0),
    2000
  );
  t.true(res.msgsPerSec > 0);
  checkLatency(t, res.latency, 2000);
});

test.serial(
  'bench human output: rates, percentiles and histogram; --progress on stderr',
  async t => {
    const r = await run([
      'bench',
      'request',
      '-s',
      server,
      '--subject',
      'bench.h',
      '--duration-ms',
      '300',
      '--progress',
    ]);
    t.is(r.code, 0, r.stderr);
    t.regex(
      r.stdout,
      /^request\/reply on bench\.h: concurrency 64, 1 responder\(s\), 128 B payloads$/m
    );
    t.regex(
      r.stdout,
      /^requests: (\d+) sent, \1 answered, 0 failed in [\d.]+ s: \d+ msgs\/s, [\d.]+ MiB\/s$/m
    );
    t.regex(
      r.stdout,
      /^latency ms: min [\d.]+ mean [\d.]+ p50 [\d.]+ p90 [\d.]+ p99 [\d.]+ p99\.9 [\d.]+ max [\d.]+$/m
    );
    t.regex(r.stdout, /^ +[\d.]+(µs|ms)-[\d.]+(µs|ms) +\d+ +[\d.]+% #+$/m);
    t.regex(r.stderr, /meshwire bench: requests \d+ answered \d+ failed 0/);

    const p = await run(['bench', 'pub', '-s', server, '--subject', 'bench.h', '--msgs', '1000']);
    t.is(p.code, 0, p.stderr);
    t.regex(p.stdout, /^pub: 1000 msgs in [\d.]+ s: \d+ msgs\/s, [\d.]+ MiB\/s$/m);
    t.regex(p.stdout, /^sub: 1000 msgs in [\d.]+ s: \d+ msgs\/s, [\d.]+ MiB\/s, dropped 0$/m);
    t.regex(p.stdout, /^latency ms: .* p99\.9 [\d.]+ max [\d.]+$/m);
    t.is(p.stderr, '', 'no progress line when stderr is not a terminal');
  }
);

test.serial('a bad argument exits 2 with one line', async t => {
  for (const args of [
    ['bench', 'pub', '--size', 'big'],
    ['bench', 'request', '--concurrency', '0'],
    ['bench', 'pub', '--msgs', '-3'],
  ]) {
    const r = await run([...args, '-s', server]);
    t.is(r.code, 2, args.join(' '));
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    t.regex(r.stderr, /^meshwire: --\w[\w-]* must be an integer/);
  }
});

test.serial('Ctrl-C ends a run with the summary so far', async t => {
  const child = spawn(process.execPath, [
    CLI,
    'bench',
    'pub',
    '-s',
    server,
    '--subject',
    'bench.int',
    '--duration-ms',
    '30000',
    '--json',
  ]);
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)));
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await new Promise(resolve => setTimeout(resolve, 1500));
  child.kill('SIGINT');
  const code = await exited;
  clearTimeout(killer);
  t.is(code, 0);
  const res = JSON.parse(stdout) as { interrupted: boolean; pub: { sent: number } };
  t.true(res.interrupted);
  t.true(res.pub.sent > 0);
});

test('bench over mTLS with a token; exit code 7 without the token', async t => {
  const { node: secure, cliFlags: tls } = await startMtlsNodeForCli('bench');
  try {
    const ok = await run([
      'bench',
      'request',
      ...tls,
      '--token',
      ADMIN_TOKEN,
      '--msgs',
      '500',
      '--json',
    ]);
    t.is(ok.code, 0, ok.stderr);
    t.is((JSON.parse(ok.stdout) as { answered: number }).answered, 500);
    const pub = await run([
      'bench',
      'pub',
      ...tls,
      '--token',
      ADMIN_TOKEN,
      '--msgs',
      '500',
      '--json',
    ]);
    t.is(pub.code, 0, pub.stderr);
    t.is((JSON.parse(pub.stdout) as { sub: { received: number } }).sub.received, 500);
    const denied = await run(['bench', 'pub', ...tls, '--msgs', '10']);
    t.is(denied.code, 7, denied.stderr);
  } finally {
    await secure.close();
  }
});
