import test from 'ava';
import type { ExecutionContext } from 'ava';
import { once } from 'node:events';
import {
  ClusterKeyring,
  ClusterKeys,
  MAX_CLUSTER_SECRETS,
  RudpSocket,
  assertClusterSecrets,
} from '../../../src/transport';
import type { RudpConnection } from '../../../src/transport';
import { buildReset } from '../../../src/transport/crypto/packet-protection';

// Several accepted cluster secrets, the first sent with (docs/security.md, "Rotating the
// cluster secret"): real UDP sockets on loopback.
const A = Buffer.from('secret A, the one in use today');
const B = Buffer.from('secret B, the one rotated to..');
const C = Buffer.from('secret C, known to nobody here');

async function pair(
  t: ExecutionContext,
  client: Buffer[],
  server: Buffer[]
): Promise<{ cs: RudpSocket; ss: RudpSocket }> {
  const ss = await RudpSocket.bind({ secrets: server });
  const cs = await RudpSocket.bind({ secrets: client });
  ss.on('connection', (c: RudpConnection) => c.pipe(c));
  t.teardown(async () => {
    await cs.close();
    await ss.close();
  });
  return { cs, ss };
}

async function echo(conn: RudpConnection, text: string): Promise<string> {
  const got = once(conn, 'data');
  conn.write(text);
  return String((await got)[0]);
}

// client set -> server set; the server's index of the matched secret, or -1: no connection
for (const [name, client, server, index] of [
  ['{A} -> {B,A}', [A], [B, A], 1],
  ['{B,A} -> {A}', [B, A], [A], -1],
  ['{A,B} -> {A}', [A, B], [A], 0],
  ['{A,B} -> {B,A}', [A, B], [B, A], 1],
  ['{B} -> {B,A}', [B], [B, A], 0],
  ['{A} -> {B}', [A], [B], -1],
] as const) {
  const verdict = index === -1 ? 'does not connect' : 'connects';
  test(`a handshake ${name} ${verdict} (the server must accept the client's first secret)`, async t => {
    const { cs, ss } = await pair(t, [...client], [...server]);
    if (index === -1) {
      await t.throwsAsync(cs.connect(ss.address(), { timeoutMs: 600 }), {
        name: 'UnavailableError',
        message: /timed out after 600 ms \(no handshake reply\)/,
      });
      t.true((ss.stats().drops.bad_auth ?? 0) > 0, 'the server counted its INITIALs as bad_auth');
      t.is(ss.stats().connections, 0);
      t.deepEqual(
        ss.stats().handshakesAcceptedBySecret,
        server.map(() => 0)
      );
      return;
    }
    const conn = await cs.connect(ss.address(), { timeoutMs: 5000 });
    t.is(await echo(conn, 'hello'), 'hello');
    const accepted = ss.stats().handshakesAcceptedBySecret;
    t.is(accepted.length, server.length);
    t.is(accepted[index], 1, `matched the server's secret ${index}`);
    t.is(ss.stats().clusterSecrets, server.length);
    conn.destroy();
  });
}

test('the three steps on live sockets: an established connection survives every change, new ones follow the set', async t => {
  const { cs, ss } = await pair(t, [A], [A]);
  const live = await cs.connect(ss.address(), { timeoutMs: 5000 });
  t.is(await echo(live, 'before'), 'before');
  // 1) add B as accepted, second
  ss.setSecrets([A, B]);
  cs.setSecrets([A, B]);
  t.is(await echo(live, 'step 1'), 'step 1');
  // 2) B first: the client now sends with B
  cs.setSecrets([B, A]);
  const second = await cs.connect(ss.address(), { timeoutMs: 5000 });
  t.is(await echo(second, 'new under B'), 'new under B');
  t.deepEqual(ss.stats().handshakesAcceptedBySecret, [1, 1], 'first under A (0), then B (1)');
  ss.setSecrets([B, A]);
  // 3) A removed: the connection made under A still works (its keys are its own)
  ss.setSecrets([B]);
  cs.setSecrets([B]);
  t.is(await echo(live, 'after removal'), 'after removal');
  t.is(await echo(second, 'still'), 'still');
  const third = await cs.connect(ss.address(), { timeoutMs: 5000 });
  t.is(await echo(third, 'B only'), 'B only');
  // a client with only A no longer gets in
  const old = await RudpSocket.bind({ secrets: [A] });
  t.teardown(() => old.close());
  await t.throwsAsync(old.connect(ss.address(), { timeoutMs: 600 }), {
    message: /no handshake reply/,
  });
  for (const c of [live, second, third]) c.destroy();
});

test('setSecrets refuses an invalid set and keeps the old one', t => {
  const ring = new ClusterKeyring([A]);
  t.throws(() => ring.replace([]), { message: 'at least one cluster secret is needed' });
  t.throws(() => ring.replace([B, Buffer.from('short')]), {
    message: 'cluster secret 2 is 5 bytes: a secret must be at least 16 bytes',
  });
  t.throws(() => ring.replace([B, A, B]), { message: 'cluster secret 3 repeats an earlier one' });
  const many = Array.from({ length: MAX_CLUSTER_SECRETS + 1 }, (_, i) =>
    Buffer.from(`a secret numbered ${i}`)
  );
  t.throws(() => assertClusterSecrets(many), {
    message: `${MAX_CLUSTER_SECRETS + 1} cluster secrets given, at most ${MAX_CLUSTER_SECRETS} are accepted`,
  });
  t.true(ring.sending.secret.equals(A), 'still A');
  t.is(ring.size, 1);
});

test('stateless resets: made with the first secret, believed under any accepted one', t => {
  const cid = Buffer.alloc(8, 7);
  const underA = buildReset(new ClusterKeys(A), cid);
  t.true(new ClusterKeyring([B, A]).verifyReset(underA, cid));
  t.false(new ClusterKeyring([B]).verifyReset(underA, cid));
  t.false(new ClusterKeyring([C, B]).verifyReset(underA, cid));
});
