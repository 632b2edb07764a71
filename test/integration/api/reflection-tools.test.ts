/**
 * Server reflection with standard tools (issue 14, item 3): buf curl with no schema but
 * the node's reflection, and Python's descriptor pool fed from the reflection service.
 */
import type { ChildProcess } from 'node:child_process';
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import test from 'ava';
import { PYTHON, pythonStubs } from '../../helpers/python';
import type { TestNode } from '../../helpers/node';
import { openSubscription, startTestNode, unary, waitFor } from '../../helpers/node';

const ROOT = join(__dirname, '..', '..', '..', '..');
const BUF = join(ROOT, 'node_modules', '.bin', 'buf');
const REFLECTION_CLIENT = join(ROOT, 'test', 'python', 'reflection_client.py');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `buf curl` over plain-text gRPC, schema from reflection only. */
function bufCurl(args: string[]): Promise<Run> {
  return new Promise(resolve => {
    execFile(
      BUF,
      ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', '--timeout', '20s', ...args],
      { timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      }
    );
  });
}

const url = (node: TestNode, path = ''): string => `http://${node.address}${path}`;

test('buf curl by reflection alone: lists services and methods, Send returns an id, ListPeers lists this node', async t => {
  const node = await startTestNode();
  try {
    const services = await bufCurl(['--list-services', url(node)]);
    t.is(services.code, 0, services.stderr);
    t.deepEqual(services.stdout.trim().split('\n').sort(), [
      'grpc.health.v1.Health',
      'grpc.reflection.v1.ServerReflection',
      'grpc.reflection.v1alpha.ServerReflection',
      'messaging.v1.Messenger',
      'messaging.v1.Peers',
    ]);
    const methods = await bufCurl(['--list-methods', url(node)]);
    t.is(methods.code, 0, methods.stderr);
    for (const m of [
      'Send',
      'SendStream',
      'Subscribe',
      'Request',
      'RequestStream',
      'Respond',
      'RequestMany',
    ]) {
      t.true(methods.stdout.includes(`messaging.v1.Messenger/${m}\n`), m);
    }
    t.true(methods.stdout.includes('messaging.v1.Peers/ListPeers'));

    const send = await bufCurl([
      url(node, '/messaging.v1.Messenger/Send'),
      '-d',
      JSON.stringify({ message: { topic: 'buf.sent', payload: 'eHg=', headers: { k: 'v' } } }),
    ]);
    t.is(send.code, 0, send.stderr);
    t.regex((JSON.parse(send.stdout) as { id: string }).id, /.+/);

    const peers = await bufCurl([url(node, '/messaging.v1.Peers/ListPeers'), '-d', '{}']);
    t.is(peers.code, 0, peers.stderr);
    const list = JSON.parse(peers.stdout) as { peers: Array<{ id: string; state: string }> };
    t.deepEqual(
      list.peers.map(p => [p.id, p.state]),
      [['test-node', 'self']]
    );
  } finally {
    await node.close();
  }
});

test('buf curl Request: UNAVAILABLE without a responder, the reply with one', async t => {
  const node = await startTestNode();
  try {
    const none = await bufCurl([
      url(node, '/messaging.v1.Messenger/Request'),
      '-d',
      JSON.stringify({ message: { topic: 'buf.rpc', payload: 'cQ==' } }),
    ]);
    t.not(none.code, 0);
    const err = JSON.parse(none.stderr) as { code: string; message: string };
    t.is(err.code, 'unavailable');
    t.regex(err.message, /no responders for "buf\.rpc"/);

    // A JS responder answers the request buf curl sends.
    const m = node.clients.messenger;
    const { stream: sub, state } = await openSubscription(m, { topics: ['buf.rpc'] });
    const replied = waitFor(() => state.items.length === 1, 20_000, 'the request').then(() =>
      unary(m, 'Respond', {
        replyTo: state.items[0].replyTo,
        message: { payload: Buffer.from('answer') },
      })
    );
    const req = await bufCurl([
      url(node, '/messaging.v1.Messenger/Request'),
      '-d',
      JSON.stringify({ message: { topic: 'buf.rpc', payload: 'cQ==' } }),
    ]);
    await replied;
    t.is(req.code, 0, req.stderr);
    const res = JSON.parse(req.stdout) as { reply: { payload: string }; responderPeer: string };
    t.is(Buffer.from(res.reply.payload, 'base64').toString(), 'answer');
    t.is(res.responderPeer, 'test-node');
    sub.cancel();
  } finally {
    await node.close();
  }
});

test('buf curl RequestMany (server streaming): every responder’s reply, by reflection alone', async t => {
  const node = await startTestNode();
  try {
    const none = await bufCurl([
      url(node, '/messaging.v1.Messenger/RequestMany'),
      '-d',
      JSON.stringify({ message: { topic: 'buf.many' }, timeoutMs: 5000 }),
    ]);
    t.not(none.code, 0);
    const err = JSON.parse(none.stderr) as { code: string; message: string };
    t.is(err.code, 'unavailable');
    t.regex(err.message, /no responders for "buf\.many"/);

    const m = node.clients.messenger;
    // Both responders are live (subscription headers) before buf curl asks.
    const subs = await Promise.all(
      ['first', 'second'].map(async word => ({
        word,
        ...(await openSubscription(m, { topics: ['buf.many'] })),
      }))
    );
    const answers = subs.map(async ({ word, stream, state }) => {
      await waitFor(() => state.items.length === 1, 20_000, `the request (${word})`);
      await unary(m, 'Respond', {
        replyTo: state.items[0].replyTo,
        message: { payload: Buffer.from(word) },
      });
      stream.cancel();
    });
    const many = await bufCurl([
      url(node, '/messaging.v1.Messenger/RequestMany'),
      '-d',
      JSON.stringify({ message: { topic: 'buf.many', payload: 'cQ==' }, timeoutMs: 20_000 }),
    ]);
    await Promise.all(answers);
    t.is(many.code, 0, many.stderr);
    // buf curl prints each stream message as its own JSON object.
    const replies = many.stdout
      .trim()
      .split(/\n(?=\{)/)
      .map(o => JSON.parse(o) as { reply: { payload: string }; responderPeer: string });
    t.deepEqual(replies.map(r => Buffer.from(r.reply.payload, 'base64').toString()).sort(), [
      'first',
      'second',
    ]);
    t.true(replies.every(r => r.responderPeer === 'test-node'));
  } finally {
    await node.close();
  }
});

test('buf curl Subscribe (server streaming) prints a delivery published after it subscribed', async t => {
  const node = await startTestNode();
  let proc: ChildProcess | undefined;
  try {
    // --timeout bounds the stream (grpc-timeout); it is killed as soon as the delivery shows.
    proc = spawn(BUF, [
      'curl',
      '--protocol',
      'grpc',
      '--http2-prior-knowledge',
      '--timeout',
      '20s',
      // -v prints the response headers (on stderr): they say the subscription is live.
      '-v',
      url(node, '/messaging.v1.Messenger/Subscribe'),
      '-d',
      JSON.stringify({ topics: ['buf.stream.>'] }),
    ]);
    let out = '';
    let err = '';
    proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise(resolve => proc?.on('exit', resolve));
    await waitFor(
      // e.g. "buf: < (#2) Meshwire-Subscription-Id: s1"
      () => /< \(#\d+\) meshwire-subscription-id: s\d+$/im.test(err),
      20_000,
      'the Subscribe response headers from buf curl'
    );
    const sent = await unary<{ id: string }>(node.clients.messenger, 'Send', {
      message: { topic: 'buf.stream.x', payload: Buffer.from('streamed') },
    });
    await waitFor(() => out.includes(sent.id) && out.trim().endsWith('}'), 20_000, 'the delivery');
    proc.kill('SIGTERM');
    await exited;
    const batch = JSON.parse(out) as {
      deliveries: Array<{ message: { id: string; topic: string; payload: string } }>;
    };
    t.is(batch.deliveries[0].message.id, sent.id);
    t.is(batch.deliveries[0].message.topic, 'buf.stream.x');
    t.is(Buffer.from(batch.deliveries[0].message.payload, 'base64').toString(), 'streamed');
  } finally {
    if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await node.close();
  }
});

test('Python loads the reflected descriptors into a descriptor pool (HeadersEntry, snake_case, real file name) and calls Send with them', async t => {
  const stubs = pythonStubs('grpc/reflection/v1/reflection.proto');
  const node = await startTestNode();
  try {
    const out = await new Promise<string>((resolve, reject) => {
      execFile(
        PYTHON,
        [REFLECTION_CLIENT, stubs, node.address],
        { timeout: 60_000 },
        (err, stdout, stderr) =>
          err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)
      );
    });
    const r = JSON.parse(out.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
    t.deepEqual(r.file_names, ['messaging/v1/messaging.proto']);
    t.deepEqual(r.nested_symbol_file, ['messaging/v1/messaging.proto']);
    t.deepEqual(r.message_nested_types, ['HeadersEntry']);
    t.true(r.headers_is_map);
    t.deepEqual(r.send_request_fields, [
      'target',
      'message',
      'ack',
      'fail_fast',
      'idempotency_key',
    ]);
    t.true((r.methods as string[]).includes('Subscribe'));
    t.true(r.has_comments, 'source info (comments) is served');
    t.is(r.unknown_symbol_code, 5, 'NOT_FOUND for an unknown symbol');
    t.true((r.services as string[]).includes('messaging.v1.Messenger'));
    t.regex(String(r.send_id), /.+/);
  } finally {
    await node.close();
  }
});
