import test from 'ava';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { RudpSocket, UdpDriver } from '../../../src/transport';
import type { RudpConnection } from '../../../src/transport';
import { SECRET, TapSocket, waitFor } from './helpers';

async function pair(): Promise<{
  server: RudpSocket;
  client: RudpSocket;
  tap: TapSocket;
  conn: RudpConnection;
  sconn: RudpConnection;
}> {
  const server = await RudpSocket.bind({ secret: SECRET });
  const tap = await TapSocket.bind();
  const client = await RudpSocket.bind({ secret: SECRET, socket: tap });
  const accepted = once(server, 'connection');
  const conn = await client.connect(server.address(), { timeoutMs: 2000 });
  const [sconn] = (await accepted) as [RudpConnection];
  return { server, client, tap, conn, sconn };
}

async function roundTrip(
  conn: RudpConnection,
  sconn: RudpConnection,
  text: string
): Promise<string> {
  const got = once(sconn, 'data');
  conn.write(Buffer.from(text));
  const [chunk] = (await got) as [Buffer];
  return chunk.toString();
}

test('bad datagrams are dropped and counted, nothing throws, the connection keeps working', async t => {
  const { server, client, tap, conn, sconn } = await pair();
  t.is(await roundTrip(conn, sconn, 'before'), 'before');
  const raw = await UdpDriver.bind('127.0.0.1', 0);
  const to = server.address();
  const send = (d: Buffer): void => raw.send([d], to.port, to.host);
  const dataPacket = tap.sent.filter(d => d[0] === 3).at(-1) as Buffer;
  t.truthy(dataPacket);
  // random bytes of many sizes
  for (let i = 0; i < 200; i++) send(randomBytes(1 + (i % 1400)));
  // truncated copies of a real packet
  for (let n = 1; n < dataPacket.length; n += 7) send(dataPacket.subarray(0, n));
  // wrong connection id
  const wrongCid = Buffer.from(dataPacket);
  randomBytes(8).copy(wrongCid, 1);
  send(wrongCid);
  // replayed packets (exact copies of what the client sent)
  for (const d of tap.sent.filter(x => x[0] === 3)) send(d);
  // tampered: one byte of the protected payload flipped
  const tampered = Buffer.from(dataPacket);
  tampered[tampered.length - 20] ^= 0x40;
  tampered.writeUInt32BE(0xfffffff0, 9); // a fresh packet number, so it is not a replay
  send(tampered);
  // oversized datagram
  send(randomBytes(4000));
  // wait until the flood is processed (the machine may be loaded)
  const want = ['malformed', 'unknown_connection', 'replay', 'bad_auth', 'oversized'];
  await waitFor(() => want.every(k => (server.stats().drops[k] ?? 0) > 0), 10_000).catch(() => {});
  const drops = server.stats().drops;
  t.true((drops.malformed ?? 0) > 0, 'malformed counted');
  t.true((drops.unknown_connection ?? 0) > 0, 'unknown connection id counted');
  t.true((drops.replay ?? 0) > 0, 'replays counted');
  t.true((drops.bad_auth ?? 0) > 0, 'tampered packet rejected');
  t.true((drops.oversized ?? 0) > 0, 'oversized counted');
  t.is(await roundTrip(conn, sconn, 'after'), 'after');
  t.false(conn.destroyed);
  await raw.close();
  // a plain destroy ends the server's side cleanly; closing the socket first would be an
  // abrupt close, an 'error' on sconn
  conn.destroy();
  await once(sconn, 'close');
  await client.close();
  await server.close();
});

test('a node with the wrong cluster secret cannot connect (INITIAL rejected, counted)', async t => {
  const server = await RudpSocket.bind({ secret: SECRET });
  const intruder = await RudpSocket.bind({
    secret: Buffer.from('some-other-cluster-secret-value'),
  });
  const err = await t.throwsAsync(intruder.connect(server.address(), { timeoutMs: 300 }));
  t.is(err?.name, 'UnavailableError');
  t.true((server.stats().drops.bad_auth ?? 0) >= 1);
  t.is(server.stats().connections, 0);
  await intruder.close();
  await server.close();
});

test('anti-amplification: an unvalidated server sends at most 3x what it received', async t => {
  const server = await RudpSocket.bind({ secret: SECRET });
  const tap = await TapSocket.bind();
  const client = await RudpSocket.bind({ secret: SECRET, socket: tap });
  // the client never confirms: its DATA packets (which would validate it) are dropped
  tap.dropSend = d => d[0] === 3;
  let serverConn: RudpConnection | null = null;
  server.on('connection', (c: RudpConnection) => {
    serverConn = c;
  });
  const conn = await client.connect(server.address(), { timeoutMs: 2000 });
  // The point: the server's retransmissions to an unvalidated client over a while stay bounded.
  await new Promise(r => setTimeout(r, 300));
  const s = server.stats();
  const fromClient = tap.sent.filter(d => d[0] !== 3).reduce((n, d) => n + d.length, 0);
  t.true(s.bytesSent <= 3 * fromClient, `${s.bytesSent} <= 3 x ${fromClient}`);
  t.is(serverConn, null, 'no connection event before validation');
  conn.destroy();
  await client.close();
  await server.close();
});
