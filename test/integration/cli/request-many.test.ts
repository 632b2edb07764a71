/**
 * `meshwire request --replies N / --stall MS` (RequestMany) against a real node process:
 * three `reply-with` responders, the output parsed line by line.
 */
import { spawn } from 'node:child_process';
import test from 'ava';
import { freePorts } from '../../helpers/ports';
import { CLI, listenFlags, runCli, spawnNode } from '../../helpers/processes';

/** Bounded below the test's own timeout. */
const run = (args: string[]) => runCli(args, { timeoutMs: 30_000 });

/** A `reply-with` responder; resolves once it says its subscription is live. */
async function responder(args: string[]): Promise<() => void> {
  const child = spawn(process.execPath, [CLI, 'reply-with', ...args], { stdio: 'pipe' });
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not subscribed: ${stderr}`)), 30_000);
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('meshwire: subscribed to')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('close', () => reject(new Error(`exited before subscribing: ${stderr}`)));
  });
  return () => child.kill('SIGKILL');
}

interface ManyLine {
  reply: { topic: string; payload: string };
  responderPeer: string;
}

test('request --replies / --stall gathers every reply, one RequestManyResponse line each', async t => {
  const [g, p, m] = await freePorts(3);
  const server = `127.0.0.1:${g}`;
  const node = await spawnNode('cli-many', [...listenFlags(g, p, m)]);
  const stops: Array<() => void> = [];
  try {
    for (const word of ['one', 'two', 'three']) {
      stops.push(await responder(['svc.many', word, '-s', server]));
    }
    const parse = (stdout: string): ManyLine[] =>
      stdout
        .trim()
        .split('\n')
        .map(l => JSON.parse(l) as ManyLine);

    const all = await run([
      'request',
      'svc.many',
      'hi',
      '-s',
      server,
      '--replies',
      'all',
      '--text',
    ]);
    t.is(all.code, 0, all.stderr);
    const lines = parse(all.stdout);
    t.deepEqual(lines.map(l => l.reply.payload).sort(), ['one', 'three', 'two']);
    t.true(lines.every(l => l.responderPeer === 'cli-many' && l.reply.topic === 'svc.many'));
    t.regex(all.stderr, /meshwire: 3 replies/);

    const two = await run(['request', 'svc.many', 'hi', '-s', server, '--replies', '2']);
    t.is(two.code, 0, two.stderr);
    const twoLines = parse(two.stdout);
    t.is(twoLines.length, 2);
    // Without --text, payloads are base64 as in the proto3 JSON mapping (like `request`).
    t.true(
      ['one', 'two', 'three'].includes(Buffer.from(twoLines[0].reply.payload, 'base64').toString())
    );

    const stall = await run([
      'request',
      'svc.many',
      'hi',
      '-s',
      server,
      '--stall',
      '300',
      '--timeout-ms',
      '20000',
      '--raw',
    ]);
    t.is(stall.code, 0, stall.stderr);
    t.deepEqual(
      ['one', 'three', 'two'].filter(w => stall.stdout.includes(w)),
      ['one', 'three', 'two'],
      'the raw payloads, back to back'
    );

    const none = await run(['request', 'svc.nobody', 'x', '-s', server, '--replies', '3']);
    t.is(none.code, 3, 'UNAVAILABLE: no responders');
    t.regex(none.stderr, /no responders for "svc\.nobody"/);

    const bad = await run(['request', 'svc.many', 'x', '-s', server, '--replies', '0']);
    t.is(bad.code, 2);
    t.regex(bad.stderr, /--replies must be a positive integer/);

    const tooMany = await run(['request', 'svc.many', 'x', '-s', server, '--replies', '10001']);
    t.is(tooMany.code, 2);
    t.regex(tooMany.stderr, /max_replies 10001 is out of range/);
  } finally {
    for (const stop of stops) stop();
    await node.kill('SIGTERM');
  }
});
