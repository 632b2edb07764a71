/**
 * RequestMany (scatter-gather) from outside: three `meshwire serve` processes, responders
 * and requesters in Python (grpcio, test/python/request_many.py), each responder its own
 * process on its own node. All replies, max_replies, stall, timeout, queue groups, no
 * responders, a responder killed mid-gather, a late reply, and bad inputs with their
 * exact statuses.
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import test from 'ava';
import { createClients } from '../../../src/api';
import { waitForPeersConnected } from '../../helpers/cluster';
import { freePorts } from '../../helpers/ports';
import type { NodeProcess } from '../../helpers/processes';
import { listenFlags, spawnNode } from '../../helpers/processes';
import { PYTHON, PYTHON_DIR, pythonStubs } from '../../helpers/python';
import { waitFor } from '../../helpers/wait';

const SCRIPT = join(PYTHON_DIR, 'request_many.py');
const IDS = ['rm-a', 'rm-b', 'rm-c'] as const;
type NodeId = (typeof IDS)[number];

interface Reply {
  payload: string;
  topic: string;
  responder_peer: string;
  at_ms: number;
}
interface GatherResult {
  replies: Reply[];
  code: string;
  details: string;
  elapsed_ms: number;
}
interface PyEvent {
  event: string;
  code?: string;
  details?: string;
  reply_to_set?: boolean;
}

/** A Python responder process and the JSON lines it printed. */
interface Responder {
  proc: ChildProcessWithoutNullStreams;
  events: PyEvent[];
  exited: Promise<void>;
}

let stubs = '';
const nodes = new Map<NodeId, NodeProcess>();
const responders: Responder[] = [];
const metricsPorts = new Map<NodeId, number>();

/** A node's /metrics text. */
async function metricsText(on: NodeId): Promise<string> {
  return (await fetch(`http://127.0.0.1:${metricsPorts.get(on)}/metrics`)).text();
}

/** The value of one sample line of a node's /metrics (0 when absent). */
async function metric(on: NodeId, line: RegExp): Promise<number> {
  const text = await metricsText(on);
  for (const l of text.split('\n')) {
    if (line.test(l)) return Number(l.split(' ').pop());
  }
  return 0;
}

const grpcOf = (id: NodeId): string => (nodes.get(id) as NodeProcess).grpc;

async function startResponder(
  on: NodeId,
  topic: string,
  payload: string,
  opts: { group?: string; delayMs?: number; silent?: boolean } = {}
): Promise<Responder> {
  const args = [SCRIPT, stubs, grpcOf(on), 'responder', topic, opts.group ?? '-', payload];
  if (opts.delayMs) args.push('--delay-ms', String(opts.delayMs));
  if (opts.silent) args.push('--silent');
  const proc = spawn(PYTHON, args);
  const r: Responder = {
    proc,
    events: [],
    exited: new Promise(resolve => proc.on('exit', () => resolve())),
  };
  let buf = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      r.events.push(JSON.parse(buf.slice(0, nl)) as PyEvent);
      buf = buf.slice(nl + 1);
    }
  });
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  responders.push(r);
  await waitFor(
    `responder on ${on} for ${topic} subscribed`,
    () => r.events.some(e => e.event === 'ready'),
    30_000,
    () => err
  );
  return r;
}

function stopResponder(r: Responder): Promise<void> {
  if (r.proc.exitCode === null && r.proc.signalCode === null) r.proc.kill('SIGKILL');
  return r.exited;
}

/** Runs RequestMany from Python against `on`. */
function gather(on: NodeId, request: Record<string, unknown>): Promise<GatherResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn(PYTHON, [SCRIPT, stubs, grpcOf(on), 'gather', JSON.stringify(request)]);
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    proc.on('exit', code => {
      if (code !== 0) reject(new Error(`gather exited ${code}: ${err}`));
      else resolve(JSON.parse(out.trim()) as GatherResult);
    });
  });
}

const payloads = (r: GatherResult): string[] => r.replies.map(x => x.payload).sort();
const peersOf = (r: GatherResult): string[] => r.replies.map(x => x.responder_peer).sort();

test.before(async () => {
  stubs = pythonStubs();
  const ports = await freePorts(9);
  const peers = IDS.map((id, i) => `${id}=127.0.0.1:${ports[3 * i + 1]}`).join(',');
  await Promise.all(
    IDS.map(async (id, i) => {
      const n = await spawnNode(id, [
        ...listenFlags(ports[3 * i], ports[3 * i + 1], ports[3 * i + 2]),
        '--peers',
        peers,
      ]);
      nodes.set(id, n);
      metricsPorts.set(id, ports[3 * i + 2]);
    })
  );
  for (const id of IDS) {
    const clients = createClients(grpcOf(id));
    try {
      await waitForPeersConnected(
        clients.peers,
        IDS.filter(o => o !== id),
        30_000
      );
    } finally {
      clients.close();
    }
  }
});

test.after.always(async () => {
  await Promise.all(responders.map(stopResponder));
  await Promise.all([...nodes.values()].map(n => n.kill('SIGKILL')));
});

// Tests run one at a time: they share the cluster, and timings are asserted.
test.serial('all replies: one responder on each node answers, each named by its node', async t => {
  for (const id of IDS) await startResponder(id, 'rm.all', `from-${id}`);
  const r = await gather('rm-a', { message: { topic: 'rm.all' }, timeoutMs: 20_000 });
  t.is(r.code, 'OK', r.details);
  t.deepEqual(payloads(r), ['from-rm-a', 'from-rm-b', 'from-rm-c']);
  t.deepEqual(peersOf(r), ['rm-a', 'rm-b', 'rm-c']);
  t.true(
    r.replies.every(x => x.topic === 'rm.all'),
    'a reply without a topic gets the request’s'
  );
  // Every delivery answered: it ends then, long before its timeout.
  t.true(r.elapsed_ms < 15_000, `ended after ${r.elapsed_ms} ms`);
});

test.serial('max_replies: the stream ends OK at that many replies', async t => {
  const r = await gather('rm-b', {
    message: { topic: 'rm.all' },
    timeoutMs: 20_000,
    maxReplies: 2,
  });
  t.is(r.code, 'OK', r.details);
  t.is(r.replies.length, 2);
  t.true(r.elapsed_ms < 15_000);
});

test.serial(
  'stall: ends OK stall_ms after the latest reply when a subscriber never answers',
  async t => {
    await startResponder('rm-a', 'rm.quiet', 'a');
    await startResponder('rm-b', 'rm.quiet', 'b');
    await startResponder('rm-c', 'rm.quiet', 'never', { silent: true });
    const r = await gather('rm-c', {
      message: { topic: 'rm.quiet' },
      timeoutMs: 30_000,
      stallMs: 1500,
    });
    t.is(r.code, 'OK', r.details);
    t.deepEqual(payloads(r), ['a', 'b']);
    const last = Math.max(...r.replies.map(x => x.at_ms));
    // Not before the stall time after the last reply (less a margin: the client sees a
    // reply a little after the node did); far before the timeout.
    t.true(r.elapsed_ms >= last + 1000, `last reply at ${last} ms, ended at ${r.elapsed_ms} ms`);
    t.true(r.elapsed_ms < 20_000, `ended at ${r.elapsed_ms} ms`);
  }
);

test.serial(
  'timeout: with no stall, the gather ends OK at timeout_ms with the replies it got',
  async t => {
    const r = await gather('rm-a', { message: { topic: 'rm.quiet' }, timeoutMs: 1500 });
    t.is(r.code, 'OK', r.details);
    t.deepEqual(payloads(r), ['a', 'b']);
    t.true(r.elapsed_ms >= 1400, `ended at ${r.elapsed_ms} ms`);
  }
);

test.serial(
  'queue groups: two members of one group on two nodes and a plain responder give exactly 2 replies',
  async t => {
    await startResponder('rm-b', 'rm.q', 'group-b', { group: 'workers' });
    await startResponder('rm-c', 'rm.q', 'group-c', { group: 'workers' });
    await startResponder('rm-a', 'rm.q', 'plain-a');
    for (let i = 0; i < 4; i++) {
      const r = await gather(IDS[i % 3], { message: { topic: 'rm.q' }, timeoutMs: 20_000 });
      t.is(r.code, 'OK', r.details);
      t.is(r.replies.length, 2, JSON.stringify(r.replies));
      t.true(payloads(r).includes('plain-a'));
      t.is(payloads(r).filter(p => p.startsWith('group-')).length, 1);
      t.true(r.elapsed_ms < 15_000, 'every delivery answered: ends before the timeout');
    }
  }
);

test.serial('no responders: UNAVAILABLE at once', async t => {
  const r = await gather('rm-b', { message: { topic: 'rm.nobody' }, timeoutMs: 30_000 });
  t.is(r.code, 'UNAVAILABLE');
  t.regex(r.details, /no responders for "rm\.nobody"/);
  t.is(r.replies.length, 0);
  t.true(r.elapsed_ms < 5000, `took ${r.elapsed_ms} ms`);
});

test.serial(
  'a responder process that dies mid-gather: the stream still ends OK with the others',
  async t => {
    await startResponder('rm-a', 'rm.die', 'a');
    await startResponder('rm-b', 'rm.die', 'b');
    const doomed = await startResponder('rm-c', 'rm.die', 'c', { delayMs: 60_000 });
    const pending = gather('rm-a', {
      message: { topic: 'rm.die' },
      timeoutMs: 30_000,
      stallMs: 1500,
    });
    await waitFor(
      'the doomed responder got the request',
      () => doomed.events.some(e => e.event === 'got'),
      20_000
    );
    await stopResponder(doomed);
    const r = await pending;
    t.is(r.code, 'OK', r.details);
    t.deepEqual(payloads(r), ['a', 'b']);
    t.deepEqual(peersOf(r), ['rm-a', 'rm-b']);
    t.true(r.elapsed_ms < 20_000, `ended at ${r.elapsed_ms} ms (stall, not the timeout)`);
  }
);

test.serial('a reply after the gather ended gets NOT_FOUND saying it ended', async t => {
  await startResponder('rm-a', 'rm.late', 'fast');
  const late = await startResponder('rm-b', 'rm.late', 'slow', { delayMs: 1500 });
  const r = await gather('rm-c', {
    message: { topic: 'rm.late' },
    timeoutMs: 20_000,
    maxReplies: 1,
  });
  t.is(r.code, 'OK', r.details);
  t.deepEqual(payloads(r), ['fast']);
  await waitFor(
    'the late responder answered',
    () => late.events.some(e => e.event === 'responded'),
    20_000
  );
  const answer = late.events.find(e => e.event === 'responded') as PyEvent;
  t.is(answer.code, 'NOT_FOUND');
  t.regex(String(answer.details), /already ended/);
});

test.serial('a target node: every subscriber there, none elsewhere', async t => {
  const r = await gather('rm-a', {
    target: { peerId: 'rm-b' },
    message: { topic: 'rm.all' },
    timeoutMs: 20_000,
  });
  t.is(r.code, 'OK', r.details);
  t.deepEqual(payloads(r), ['from-rm-b']);
  t.deepEqual(peersOf(r), ['rm-b']);
});

test.serial('bad inputs: exact statuses and messages', async t => {
  const cases: Array<[Record<string, unknown>, string, RegExp]> = [
    [
      { message: { topic: 'rm.all' }, maxReplies: 10_001 },
      'INVALID_ARGUMENT',
      /max_replies 10001 is out of range: give 0 .* to 10000/,
    ],
    [
      { message: { topic: 'rm.all' }, timeoutMs: 300_001 },
      'INVALID_ARGUMENT',
      /timeout_ms 300001 is out of range/,
    ],
    [
      { message: { topic: 'rm.all' }, stallMs: 400_000 },
      'INVALID_ARGUMENT',
      /stall_ms 400000 is out of range/,
    ],
    [{ message: { topic: '' } }, 'INVALID_ARGUMENT', /topic/],
    [{ message: { topic: 'rm.*' } }, 'INVALID_ARGUMENT', /topic/],
    [{ message: { topic: 'rm.all' }, target: { peerId: 'bad id!' } }, 'INVALID_ARGUMENT', /peer/],
    [
      { message: { topic: 'rm.all' }, target: { peerId: 'rm-nowhere' }, timeoutMs: 2000 },
      'UNAVAILABLE',
      /rm-nowhere/,
    ],
  ];
  for (const [req, code, details] of cases) {
    const r = await gather('rm-a', req);
    t.is(r.code, code, `${JSON.stringify(req)}: ${r.details}`);
    t.regex(r.details, details, JSON.stringify(req));
    t.is(r.replies.length, 0);
  }
});

test.serial('metrics: calls, replies and ends by reason on the requesting node', async t => {
  const calls = await metric('rm-a', /^meshwire_request_many_calls_total[ {]/);
  // On rm-a so far: all replies, timeout, a responder dies, a target node (+ queue groups).
  t.true(
    calls >= 5,
    `calls ${calls}: ${(await metricsText('rm-a'))
      .split('\n')
      .filter(l => l.includes('request_many'))
      .join('\n')}`
  );
  t.true((await metric('rm-a', /^meshwire_request_many_replies_total[ {]/)) >= 9);
  t.true((await metric('rm-a', /^meshwire_request_many_ended_total\{reason="all_answered"/)) >= 2);
  t.is(await metric('rm-a', /^meshwire_request_many_ended_total\{reason="timeout"/), 1);
  t.is(await metric('rm-a', /^meshwire_request_many_ended_total\{reason="stall"/), 1);
  t.is(await metric('rm-b', /^meshwire_request_many_ended_total\{reason="no_responders"/), 1);
  t.is(await metric('rm-b', /^meshwire_request_many_ended_total\{reason="max_replies"/), 1);
  t.is(await metric('rm-a', /^meshwire_request_many_active[ {]/), 0);
  // Every call's stream closed, those that ended with an error too.
  for (const id of IDS) {
    t.regex(
      await metricsText(id),
      /^meshwire_grpc_streams_active\{[^}]*rpc_method="RequestMany"[^}]*\} 0$/m,
      id
    );
  }
});
