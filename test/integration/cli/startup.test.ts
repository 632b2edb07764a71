/**
 * Start-up through the real CLI (`meshwire serve`): a listener that cannot bind stops the
 * node with one line naming the config key, the address and the reason; the development
 * cluster secret is refused off loopback; gRPC exposed without TLS or tokens is warned
 * about; every line a node writes is one JSON object without duplicate keys.
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import type { Socket as UdpSocket } from 'node:dgram';
import type { Server } from 'node:net';
import { createServer } from 'node:net';
import { status } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import test from 'ava';
import { createClients } from '../../../src/api';
import { clientSecurity } from '../../../src/api/auth-client';
import { duplicateKeys, parseLogLines } from '../../helpers/json-lines';
import type { LogLine } from '../../helpers/json-lines';
import { unary } from '../../helpers/node';
import { freePorts } from '../../helpers/ports';
import { CLI, listenFlags } from '../../helpers/processes';
import { waitFor } from '../../helpers/wait';
import { ORDERS_TOKEN, tempDir, TOKENS_YAML, writeTokens } from '../security/helpers';

/** How long a failing start may take in all, start-up included (a loaded machine). */
const EXIT_WAIT_MS = 10_000;

interface Serve {
  proc: ChildProcessWithoutNullStreams;
  stdout: () => string;
  stderr: () => string;
  /** Exit code (null: killed by a signal). */
  exited: Promise<number | null>;
}

function serve(flags: string[], env: Record<string, string> = {}): Serve {
  const proc = spawn(process.execPath, [CLI, 'serve', '--node-id', 'startup-node', ...flags], {
    env: { ...process.env, ...env },
  });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>(resolve => proc.on('exit', code => resolve(code)));
  return { proc, stdout: () => out, stderr: () => err, exited };
}

/** The exit code, or 'still running' (then the process is killed) after `ms`. */
async function exitWithin(s: Serve, ms: number): Promise<number | null | 'still running'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'still running'>(resolve => {
    timer = setTimeout(() => resolve('still running'), ms);
  });
  const r = await Promise.race([s.exited, late]);
  clearTimeout(timer);
  if (r === 'still running') {
    s.proc.kill('SIGKILL');
    await s.exited;
  }
  return r;
}

async function startedOrExit(s: Serve, ms = 60_000): Promise<void> {
  const started = (): boolean => {
    if (s.proc.exitCode !== null) throw new Error(`node exited early:\n${s.stdout()}${s.stderr()}`);
    return s.stdout().includes('meshwire node started');
  };
  await waitFor('the node to start', started, ms, () => `${s.stdout()}${s.stderr()}`).catch(
    (err: Error) => {
      s.proc.kill('SIGKILL');
      throw err;
    }
  );
}

function holdTcp(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => resolve(srv));
  });
}

function holdUdp(port: number): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const u = createSocket('udp4');
    u.once('error', reject);
    u.bind(port, '127.0.0.1', () => resolve(u));
  });
}

const KEYS = ['grpcListen', 'peerListen', 'metricsListen'] as const;

for (const key of KEYS) {
  test.serial(
    `a taken ${key} port stops the node: non-zero exit, one line naming ${key} and the address`,
    async t => {
      const [g, p, m] = await freePorts(3);
      const port = { grpcListen: g, peerListen: p, metricsListen: m }[key];
      const release =
        key === 'peerListen'
          ? await holdUdp(port).then(u => () => u.close())
          : await holdTcp(port).then(srv => () => srv.close());
      try {
        const s = serve([...listenFlags(g, p, m)]);
        const code = await exitWithin(s, EXIT_WAIT_MS);
        t.not(code, 'still running', `still running after ${EXIT_WAIT_MS} ms:\n${s.stdout()}`);
        t.not(code, 0);
        t.not(code, null, 'exited by itself, not by a signal');
        // stderr: exactly the one line; stdout: JSON only (grpc-js's own report included)
        t.deepEqual(s.stderr().trim().split('\n'), [
          `meshwire: ${key} 127.0.0.1:${port}: address already in use`,
        ]);
        const lines = parseLogLines(s.stdout());
        t.false(lines.some(l => l.msg === 'meshwire node started'));
        if (key === 'grpcListen') {
          t.true(
            lines.some(l => l.component === 'grpc-js' && l.level === 'error'),
            "grpc-js's bind report is a JSON error line"
          );
        }
      } finally {
        release();
      }
    }
  );
}

for (const listen of ['0.0.0.0:0', '[::]:0']) {
  test.serial(
    `peerListen ${listen} without a cluster secret: exit 2 and one line naming clusterSecretFile`,
    async t => {
      const s = serve(['--peer-listen', listen, '--grpc-listen', '127.0.0.1:0'], {
        MESHWIRE_CLUSTER_SECRET_FILE: '',
      });
      const code = await exitWithin(s, EXIT_WAIT_MS);
      t.is(code, 2);
      const err = s.stderr().trim().split('\n');
      t.is(err.length, 1, s.stderr());
      t.regex(err[0], /^meshwire: invalid config: clusterSecretFile is not set and peerListen/);
      t.regex(err[0], /MESHWIRE_CLUSTER_SECRET_FILE/);
      t.is(s.stdout(), '', 'refused before anything was bound or logged');
    }
  );
}

test.serial('plaintext, unauthenticated gRPC on 0.0.0.0 logs a security warning', async t => {
  const [g] = await freePorts(1);
  const s = serve([
    '--grpc-listen',
    `0.0.0.0:${g}`,
    '--peer-listen',
    '127.0.0.1:0',
    '--metrics-listen',
    '127.0.0.1:0',
  ]);
  try {
    await startedOrExit(s);
    const warn = parseLogLines(s.stdout()).find(l => /SECURITY WARNING/.test(l.msg));
    t.truthy(warn, s.stdout());
    t.is(warn?.level, 'warn');
    t.deepEqual(warn?.exposure, ['plaintext', 'unauthenticated']);
    t.is(warn?.grpc, `0.0.0.0:${g}`);
  } finally {
    s.proc.kill('SIGTERM');
    t.is(await exitWithin(s, EXIT_WAIT_MS), 0);
  }
});

test.serial(
  'SIGTERM while the node is still starting drains it once started and exits 0',
  async t => {
    const s = serve(['--grpc-listen', '127.0.0.1:0', '--peer-listen', '127.0.0.1:0']);
    // The peer transport's line comes before the gRPC server is up: the node is mid-start.
    await waitFor(
      'the peer transport line',
      () => s.stdout().includes('peer transport bound') || s.proc.exitCode !== null,
      60_000,
      () => `${s.stdout()}${s.stderr()}`
    );
    s.proc.kill('SIGTERM');
    t.is(await exitWithin(s, EXIT_WAIT_MS), 0, `${s.stdout()}${s.stderr()}`);
    const msgs = parseLogLines(s.stdout()).map(l => String(l.msg));
    const signalled = msgs.findIndex(m => /^signal received/.test(m));
    t.true(signalled >= 0, s.stdout());
    t.true(msgs.includes('meshwire node stopped'), s.stdout());
  }
);

async function refused(p: Promise<unknown>): Promise<ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error('call succeeded but should have been refused');
}

test.serial(
  'every line of a node is one JSON object without duplicate keys; refusals are logged; draining before stopped',
  async t => {
    const dir = tempDir();
    const tokens = writeTokens(dir, TOKENS_YAML);
    const [g] = await freePorts(1);
    const s = serve([
      '--grpc-listen',
      `127.0.0.1:${g}`,
      '--peer-listen',
      '127.0.0.1:0',
      '--metrics-listen',
      '127.0.0.1:0',
      '--auth-tokens-file',
      tokens,
    ]);
    let code: number | null | 'still running' = 'still running';
    try {
      await startedOrExit(s);
      const send = (topic: string) => ({ message: { topic, payload: Buffer.from('p') } });
      const anonymous = createClients(`127.0.0.1:${g}`);
      const wrong = createClients(
        `127.0.0.1:${g}`,
        clientSecurity({ token: 'wrong-token-0123456789abc' })
      );
      const orders = createClients(`127.0.0.1:${g}`, clientSecurity({ token: ORDERS_TOKEN }));
      try {
        t.is(
          (await refused(unary(anonymous.messenger, 'Send', send('orders.a')))).code,
          status.UNAUTHENTICATED
        );
        t.is(
          (await refused(unary(wrong.messenger, 'Send', send('orders.a')))).code,
          status.UNAUTHENTICATED
        );
        const denied = await refused(unary(orders.messenger, 'Send', send('billing.x')));
        t.is(denied.code, status.PERMISSION_DENIED);
      } finally {
        for (const c of [anonymous, wrong, orders]) c.close();
      }
    } finally {
      s.proc.kill('SIGTERM');
      code = await exitWithin(s, EXIT_WAIT_MS);
    }
    t.is(code, 0);
    t.is(s.stderr(), '', 'nothing on stderr (grpc-js included)');
    let lines: LogLine[] = [];
    t.notThrows(() => {
      lines = parseLogLines(s.stdout());
    });
    const refusals = lines.filter(l => l.msg === 'call refused');
    t.is(refusals.length, 3, s.stdout());
    t.deepEqual(
      refusals.map(l => l.reason),
      ['unauthenticated', 'unauthenticated', 'permission_denied']
    );
    t.is(refusals[2].token_name, 'orders');
    t.is(refusals[2].component, 'auth');
    t.false(s.stdout().includes(ORDERS_TOKEN), 'a token never appears in the logs');
    t.false(s.stdout().includes('wrong-token-0123456789abc'), 'nor a wrong one');
    // transport lines carry their component once (the scan above checked every line)
    t.true(lines.some(l => l.component === 'transport' && l.msg === 'peer transport bound'));
    t.false(
      lines.some(l => /SECURITY WARNING/.test(l.msg)),
      'no warning on loopback'
    );
    const msgs = lines.map(l => l.msg);
    const draining = msgs.indexOf('draining');
    const stopped = msgs.indexOf('meshwire node stopped');
    t.true(draining >= 0 && stopped > draining, msgs.join(' | '));
    t.is(stopped, msgs.length - 1, 'stopped is the last line');
  }
);

test('duplicateKeys finds a key repeated within one object, not across objects', t => {
  t.deepEqual(duplicateKeys('{"component":"a","x":1,"component":"a"}'), ['component']);
  t.deepEqual(duplicateKeys('{"a":{"b":1},"c":{"b":2},"d":["a",{"a":1}]}'), []);
  t.deepEqual(duplicateKeys('{"s":"\\"a\\",\\"a\\":","a":1,"n":{"k":1,"k":2}}'), ['k']);
  t.throws(() => parseLogLines('{"a":1}\nE No address added\n'), { message: /not a JSON line/ });
});
