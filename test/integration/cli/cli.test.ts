import { execFile } from 'node:child_process';
import test from 'ava';
import { freePorts } from '../../helpers/ports';
import type { NodeProcess } from '../../helpers/processes';
import { CLI, spawnNode } from '../../helpers/processes';

function run(
  args: string[],
  timeoutMs = 20_000
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise(resolve => {
    execFile(process.execPath, [CLI, ...args], { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function startServe(): Promise<{ server: string; node: NodeProcess }> {
  const [g, p, mt] = await freePorts(3);
  const node = await spawnNode('cli-node', [
    '--grpc-listen',
    `127.0.0.1:${g}`,
    '--peer-listen',
    `127.0.0.1:${p}`,
    '--metrics-listen',
    `127.0.0.1:${mt}`,
  ]);
  return { node, server: `127.0.0.1:${g}` };
}

test('serve, sub, send, request, reply-with, peers; SIGTERM exits 0', async t => {
  const { node, server } = await startServe();
  try {
    const sub = run(['sub', 'cli.>', '-s', server, '--count', '1']);
    // The subscription is asynchronous: send until it is delivered.
    let delivered = false;
    for (let i = 0; i < 50 && !delivered; i++) {
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
      delivered = (JSON.parse(r.stdout) as { delivered: number }).delivered === 1;
    }
    const s = await sub;
    t.is(s.code, 0, s.stderr);
    const line = JSON.parse(s.stdout.trim()) as {
      topic: string;
      payload: string;
      headers: Record<string, string>;
    };
    t.is(line.topic, 'cli.hello');
    t.is(line.payload, 'hi there');
    t.is(line.headers.a, 'b');

    const responder = run(['reply-with', 'cli.svc', 'pong', '-s', server, '--count', '1']);
    let reply: { code: number; stdout: string; stderr: string } | undefined;
    for (let i = 0; i < 50; i++) {
      reply = await run(['request', 'cli.svc', 'ping', '-s', server, '--timeout-ms', '2000']);
      if (reply.code !== 3) break; // 3: no responders yet
    }
    t.is(reply?.code, 0, reply?.stderr);
    t.is((JSON.parse(reply?.stdout ?? '{}') as { payload: string }).payload, 'pong');
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
