import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { freePorts } from '../../helpers/ports';
import type { NodeProcess } from '../../helpers/processes';
import { CLI, listenFlags, runCli, spawnNode } from '../../helpers/processes';

const run = (args: string[], timeoutMs = 20_000) => runCli(args, { timeoutMs });

/** Runs the CLI with `stdin` as its standard input; stdout kept as bytes. */
function runBytes(
  args: string[],
  stdin?: Buffer,
  timeoutMs = 20_000
): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise(resolve => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: 'pipe' });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', code => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout: Buffer.concat(out), stderr });
    });
    child.stdin.end(stdin ?? Buffer.alloc(0));
  });
}

/**
 * Starts a CLI command that subscribes (`sub`, `reply-with`); `ready` resolves when it
 * says on stderr that the subscription is live (Subscribe's response headers).
 */
function startSubscriber(args: string[]): {
  ready: Promise<void>;
  done: Promise<{ code: number; stdout: Buffer; stderr: string }>;
} {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: 'pipe' });
  const out: Buffer[] = [];
  let stderr = '';
  let onReady!: () => void;
  const ready = new Promise<void>((resolve, reject) => {
    onReady = resolve;
    child.on('close', () => reject(new Error(`exited before subscribing: ${stderr}`)));
  });
  ready.catch(() => undefined);
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.includes('meshwire: subscribed to')) onReady();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const done = new Promise<{ code: number; stdout: Buffer; stderr: string }>(resolve =>
    child.on('close', code => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout: Buffer.concat(out), stderr });
    })
  );
  child.stdin.end();
  return { ready, done };
}

/**
 * A `reply-with <topic> pong` responder (answering once), live before a `request <topic>
 * ping` is made; returns the request's outcome and the responder's exit.
 */
async function requestPong(
  server: string,
  topic: string
): Promise<{
  reply: { code: number; stdout: string; stderr: string };
  responder: Promise<{ code: number }>;
}> {
  const responder = startSubscriber(['reply-with', topic, 'pong', '-s', server, '--count', '1']);
  await responder.ready;
  const reply = await run(['request', topic, 'ping', '-s', server, '--timeout-ms', '2000']);
  return { reply, responder: responder.done };
}

/** Every key, at any depth, of a parsed JSON value (map keys of `headers` excluded). */
function keysOf(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) keysOf(v, out);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.push(k);
      if (k !== 'headers') keysOf(v, out);
    }
  }
  return out;
}

/** Sends `payload` (from stdin) to a live subscriber; returns the send's JSON. */
async function sendDelivered(
  t: { is(a: unknown, b: unknown, m?: string): void },
  server: string,
  topic: string,
  payload: Buffer,
  extra: string[] = []
): Promise<Record<string, unknown>> {
  const r = await runBytes(
    ['send', topic, '-', '-s', server, '--ack', 'delivered', ...extra],
    payload
  );
  t.is(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout.toString()) as Record<string, unknown>;
  t.is(res.delivered, 1, `${topic}: delivered`);
  return res;
}

async function startServe(): Promise<{ server: string; node: NodeProcess }> {
  const [g, p, mt] = await freePorts(3);
  const node = await spawnNode('cli-node', [...listenFlags(g, p, mt)]);
  return { node, server: `127.0.0.1:${g}` };
}

test('serve, sub, send, request, reply-with, peers; SIGTERM exits 0', async t => {
  const { node, server } = await startServe();
  try {
    const subscriber = startSubscriber(['sub', 'cli.>', '-s', server, '--count', '1']);
    await subscriber.ready; // the subscription is live: one send is enough
    const r = await run([
      'send',
      'cli.hello',
      'hi there',
      '-s',
      server,
      '--ack',
      'delivered',
      '-H',
      'a=b',
    ]);
    t.is(r.code, 0, r.stderr);
    t.is((JSON.parse(r.stdout) as { delivered: number }).delivered, 1);
    const sub = subscriber.done.then(x => ({ ...x, stdout: x.stdout.toString() }));
    const s = await sub;
    t.is(s.code, 0, s.stderr);
    // One messaging.v1.Delivery in the proto3 JSON mapping: bytes are base64.
    const line = JSON.parse(s.stdout.trim()) as {
      message: { topic: string; payload: string; headers: Record<string, string> };
      sourcePeer: string;
    };
    t.is(line.message.topic, 'cli.hello');
    t.is(Buffer.from(line.message.payload, 'base64').toString('utf8'), 'hi there');
    t.is(line.message.headers.a, 'b');
    t.is(line.sourcePeer, 'cli-node');

    const { reply, responder } = await requestPong(server, 'cli.svc');
    t.is(reply.code, 0, reply.stderr);
    const res = JSON.parse(reply.stdout) as {
      reply: { payload: string };
      responderPeer: string;
    };
    t.is(Buffer.from(res.reply.payload, 'base64').toString('utf8'), 'pong');
    t.is(res.responderPeer, 'cli-node');
    t.is((await responder).code, 0);

    const noResp = await run(['request', 'cli.none', 'x', '-s', server]);
    t.is(noResp.code, 3);
    t.regex(noResp.stderr, /no responders for "cli.none"/);
    const bad = await run(['send', 'bad..topic', 'x', '-s', server]);
    t.is(bad.code, 2);
    t.regex(bad.stderr, /empty token/);

    t.is((await run(['peers', 'put', 'node-b', '127.0.0.1:7411', '-s', server])).code, 0);
    const peers = await run(['peers', 'list', '-s', server]);
    t.regex(peers.stdout, /"id":"node-b"/);
    t.is((await run(['peers', 'delete', 'node-zz', '-s', server])).code, 5);
  } finally {
    await node.kill('SIGTERM');
  }
  t.is(await node.exited, 0);
});

test('a bad config value stops serve with one line naming key, value and rule (exit 2)', async t => {
  const r = await run(['serve', '--drain-timeout-ms', 'soon']);
  t.is(r.code, 2);
  const lines = r.stderr.trim().split('\n');
  t.is(lines.length, 1);
  t.regex(
    lines[0],
    /drainTimeoutMs = "soon" \(from --drain-timeout-ms\).*integer from 0 to 3600000/
  );
});

test('serve --help lists every option with its default', async t => {
  const r = await run(['serve', '--help']);
  t.is(r.code, 0);
  for (const flag of [
    '--grpc-listen',
    '--peer-listen',
    '--metrics-listen',
    '--peers',
    '--peer-dns',
    '--drain-timeout-ms',
    '--max-message-bytes',
    '--log-level',
    '--tls-cert-file',
    '--auth-tokens-file',
    '--address-targets',
    '--max-address-senders',
    '--address-sender-idle-ms',
    '--address-target-cidrs',
    '--config',
  ]) {
    t.true(r.stdout.includes(flag), flag);
  }
  const flat = r.stdout.replace(/\s+/g, ' ');
  t.regex(
    flat,
    /--grpc-listen <value> gRPC API listen address host:port \(default: "127\.0\.0\.1:7400"\) \(env MESHWIRE_GRPC_LISTEN\)/
  );
  t.regex(flat, /\(default: "10000"\) \(env MESHWIRE_DRAIN_TIMEOUT_MS\)/);
  t.regex(flat, /\(default: "256"\) \(env MESHWIRE_MAX_ADDRESS_SENDERS\)/);
  t.regex(flat, /\(default: "0\.0\.0\.0\/0,::\/0"\) \(env MESHWIRE_ADDRESS_TARGET_CIDRS\)/);
});

test('a client command against no server exits 3 (unavailable)', async t => {
  const [port] = await freePorts(1);
  const r = await run(['send', 'a.b', 'x', '-s', `127.0.0.1:${port}`]);
  t.is(r.code, 3);
});

test('--version prints the version of package.json and exits 0', async t => {
  const pkg = JSON.parse(readFileSync(join(__dirname, '../../../../package.json'), 'utf8')) as {
    version: string;
  };
  for (const flag of ['--version', '-V']) {
    const r = await run([flag]);
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout.trim(), pkg.version);
  }
});

test('a binary payload round-trips byte-exact: send from stdin, sub --raw and JSON base64, request --raw and JSON, --text', async t => {
  const { node, server } = await startServe();
  // Every byte value, and sequences that are not UTF-8 (a lone continuation byte, 0xff).
  const payload = Buffer.concat([
    Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
    Buffer.from([0x80, 0xff, 0xfe, 0x0a, 0x0d, 0x00]),
    randomBytes(4096),
  ]);
  try {
    // sub --raw: the bytes and nothing else.
    const rawSub = startSubscriber(['sub', 'bin.raw', '-s', server, '--count', '1', '--raw']);
    await rawSub.ready;
    const raw = rawSub.done;
    await sendDelivered(t, server, 'bin.raw', payload);
    const r = await raw;
    t.is(r.code, 0, r.stderr);
    t.true(r.stdout.equals(payload), `sub --raw wrote ${r.stdout.length} bytes`);

    // sub (JSON): base64 that decodes to the same bytes; --text cannot make them text.
    const jsonSub = startSubscriber(['sub', 'bin.json', '-s', server, '--count', '1']);
    await jsonSub.ready;
    const json = jsonSub.done;
    await sendDelivered(t, server, 'bin.json', payload);
    const textSub = startSubscriber(['sub', 'bin.json2', '-s', server, '--count', '1', '--text']);
    await textSub.ready;
    const text = textSub.done;
    await sendDelivered(t, server, 'bin.json2', payload);
    const line = JSON.parse((await json).stdout.toString()) as { message: { payload: string } };
    t.true(Buffer.from(line.message.payload, 'base64').equals(payload));
    const textLine = JSON.parse((await text).stdout.toString()) as {
      message: { payload: string; payloadEncoding?: string };
    };
    t.is(textLine.message.payloadEncoding, 'base64', 'not UTF-8: kept as base64 and said so');
    t.true(Buffer.from(textLine.message.payload, 'base64').equals(payload));

    // --text with UTF-8 payload prints the text itself.
    const utf8Sub = startSubscriber(['sub', 'bin.text', '-s', server, '--count', '1', '--text']);
    await utf8Sub.ready;
    const utf8 = utf8Sub.done;
    await sendDelivered(t, server, 'bin.text', Buffer.from('grüße ✓\n'));
    const utf8Line = JSON.parse((await utf8).stdout.toString()) as {
      message: { payload: string; payloadEncoding?: string };
    };
    t.is(utf8Line.message.payload, 'grüße ✓\n');
    t.is(utf8Line.message.payloadEncoding, undefined);

    // request: the echo responder returns the bytes; --raw writes them exactly, JSON as base64.
    const responderRun = startSubscriber([
      'reply-with',
      'bin.echo',
      '--echo',
      '-s',
      server,
      '--count',
      '2',
    ]);
    await responderRun.ready;
    const responder = responderRun.done;
    const reply: { code: number; stdout: Buffer; stderr: string } | undefined = await runBytes(
      ['request', 'bin.echo', '-', '-s', server, '--raw'],
      payload
    );
    t.is(reply?.code, 0, reply?.stderr);
    t.true(reply?.stdout.equals(payload), `request --raw wrote ${reply?.stdout.length} bytes`);
    const jr = await runBytes(['request', 'bin.echo', '-', '-s', server], payload);
    t.is(jr.code, 0, jr.stderr);
    const res = JSON.parse(jr.stdout.toString()) as { reply: { payload: string } };
    t.true(Buffer.from(res.reply.payload, 'base64').equals(payload));
    t.is((await responder).code, 0);

    // --raw and --text together are a usage error.
    t.is((await run(['sub', 'x', '-s', server, '--raw', '--text'])).code, 2);
  } finally {
    await node.kill('SIGTERM');
  }
  t.is(await node.exited, 0);
});

test('every command prints proto3 JSON field names (lowerCamelCase, as buf curl): send, sub, request, peers', async t => {
  const { node, server } = await startServe();
  try {
    const subSub = startSubscriber(['sub', 'names.>', '-s', server, '--count', '1']);
    await subSub.ready;
    const sub = subSub.done;
    const sent = await sendDelivered(t, server, 'names.a', Buffer.from('x'), ['-H', 'k=v']);
    t.deepEqual(Object.keys(sent).sort(), ['delivered', 'id']);
    const delivery = JSON.parse((await sub).stdout.toString()) as Record<string, unknown>;
    t.deepEqual(Object.keys(delivery).sort(), ['message', 'replyTo', 'sourcePeer']);

    const { reply, responder } = await requestPong(server, 'names.svc');
    t.is(reply.code, 0, reply.stderr);
    const response = JSON.parse(reply.stdout) as Record<string, unknown>;
    t.deepEqual(Object.keys(response).sort(), ['reply', 'responderPeer']);
    await responder;

    t.is((await run(['peers', 'put', 'node-b', '127.0.0.1:7411', '-s', server])).code, 0);
    const peers = await run(['peers', 'list', '-s', server]);
    const peer = peers.stdout
      .trim()
      .split('\n')
      .map(l => JSON.parse(l) as Record<string, unknown>)
      .find(p => p.id === 'node-b');
    if (!peer) throw new Error(`no node-b in ${peers.stdout}`);
    for (const key of ['srttUs', 'inFlight', 'queueDepth', 'lastError', 'lastSeenUnixMs']) {
      t.true(key in peer, `PeerInfo.${key}`);
    }
    // uint64 fields are strings in the proto3 JSON mapping.
    t.is(typeof peer.srttUs, 'string');
    // The same message as `buf curl --emit-defaults` prints it: same names, same JSON types.
    const buf = await new Promise<{ code: number; stdout: string; stderr: string }>(res => {
      execFile(
        join(__dirname, '../../../../node_modules/.bin/buf'),
        [
          'curl',
          '--schema',
          join(__dirname, '../../../../proto'),
          '--protocol',
          'grpc',
          '--http2-prior-knowledge',
          '--emit-defaults',
          `http://${server}/messaging.v1.Peers/ListPeers`,
        ],
        { timeout: 60_000 },
        (err, stdout, stderr) =>
          res({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr })
      );
    });
    t.is(buf.code, 0, buf.stderr);
    const bufPeer = (
      JSON.parse(buf.stdout) as { peers: Array<Record<string, unknown>> }
    ).peers.find(p => p.id === 'node-b');
    const shape = (o: Record<string, unknown>): string[] =>
      Object.entries(o)
        .map(([k, v]) => `${k}:${Array.isArray(v) ? 'array' : typeof v}`)
        .sort();
    t.deepEqual(shape(peer), shape(bufPeer ?? {}));
    t.deepEqual(peer.addresses, bufPeer?.addresses);
    const all = [sent, delivery, response, peer].flatMap(v => keysOf(v));
    t.deepEqual(
      all.filter(k => !/^[a-z][a-zA-Z0-9]*$/.test(k)),
      [],
      'no snake_case or other field names'
    );
  } finally {
    await node.kill('SIGTERM');
  }
  t.is(await node.exited, 0);
});
