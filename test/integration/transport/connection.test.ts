import test from 'ava';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { RudpSocket } from '../../../src/transport';
import type { RudpConnection } from '../../../src/transport';
import { SECRET, TapSocket, readAll, waitFor } from './helpers';

test('echo 256 KiB over loopback UDP, in order, then clean close on both sides', async t => {
  const server = await RudpSocket.bind({ secret: SECRET });
  const client = await RudpSocket.bind({ secret: SECRET });
  server.on('connection', (c: RudpConnection) => c.pipe(c));
  const conn = await client.connect(server.address(), { timeoutMs: 2000 });
  const data = randomBytes(256 * 1024);
  const received = readAll(conn);
  const closed = once(conn, 'close');
  conn.end(data);
  const echoed = await received;
  t.true(echoed.equals(data));
  await closed;
  const st = conn.stats();
  t.is(st.streamBytesReceived, data.length);
  t.true(st.srttMs > 0);
  await client.close();
  await server.close();
});

test('connect to a dead address fails with UnavailableError within the timeout', async t => {
  const client = await RudpSocket.bind({ secret: SECRET });
  const dead = await RudpSocket.bind({ secret: SECRET });
  const addr = dead.address();
  await dead.close();
  const start = Date.now();
  const err = await t.throwsAsync(client.connect(addr, { timeoutMs: 300 }));
  t.is(err?.name, 'UnavailableError');
  t.true(Date.now() - start < 3000);
  t.is(client.stats().connections, 0);
  await client.close();
});

test('connect is cancelled by an AbortSignal', async t => {
  const client = await RudpSocket.bind({ secret: SECRET });
  const ac = new AbortController();
  const p = client.connect({ host: '127.0.0.1', port: 9 }, { timeoutMs: 5000, signal: ac.signal });
  ac.abort();
  const err = await t.throwsAsync(p);
  t.is(err?.name, 'CancelledError');
  await client.close();
});

for (const direction of ['client->server', 'server->client'] as const) {
  test(`handshake survives losing the first two handshake datagrams (${direction})`, async t => {
    const tap = await TapSocket.bind();
    let dropped = 0;
    const drop = (d: Buffer): boolean => {
      const hs = direction === 'client->server' ? d[0] === 1 : d[0] === 2;
      if (hs && dropped < 2) {
        dropped++;
        return true;
      }
      return false;
    };
    const server = await RudpSocket.bind({
      secret: SECRET,
      socket: direction === 'server->client' ? tap : undefined,
    });
    const client = await RudpSocket.bind({
      secret: SECRET,
      socket: direction === 'client->server' ? tap : undefined,
    });
    tap.dropSend = drop;
    const accepted = once(server, 'connection');
    const conn = await client.connect(server.address(), { timeoutMs: 3000 });
    const [sconn] = (await accepted) as [RudpConnection];
    t.is(dropped, 2);
    conn.end(Buffer.from('after a lossy handshake'));
    t.is((await readAll(sconn)).toString(), 'after a lossy handshake');
    await client.close();
    await server.close();
  });
}

test('idle timeout closes the connection with an error when the peer vanishes', async t => {
  const tap = await TapSocket.bind();
  const server = await RudpSocket.bind({ secret: SECRET, idleTimeoutMs: 300, socket: tap });
  const client = await RudpSocket.bind({ secret: SECRET, idleTimeoutMs: 300 });
  const conn = await client.connect(server.address(), { timeoutMs: 2000 });
  const errored = once(conn, 'error');
  // the server disappears without a word (no CLOSE, no reset: its port is gone)
  tap.dropSend = () => true;
  await server.close();
  const [err] = (await errored) as [Error];
  t.is(err.name, 'UnavailableError');
  t.regex(err.message, /idle/);
  await client.close();
});

test('closing a socket tells its peers at once: their connections end with the reason, no idle wait', async t => {
  const server = await RudpSocket.bind({ secret: SECRET, idleTimeoutMs: 60_000 });
  const client = await RudpSocket.bind({ secret: SECRET, idleTimeoutMs: 60_000 });
  const accepted = once(server, 'connection');
  const conn = await client.connect(server.address(), { timeoutMs: 2000 });
  await accepted;
  const errored = once(conn, 'error');
  const start = Date.now();
  // the last datagrams (CLOSE frames) must leave before the UDP socket is closed
  await server.close();
  const [err] = (await errored) as [Error];
  t.is(err.name, 'ConnectionClosedError');
  t.regex(err.message, /closed by peer: socket closed/);
  t.true(Date.now() - start < 5000, 'far sooner than the 60 s idle timeout');
  await client.close();
});

test('keepalive holds an idle connection open past the idle timeout', async t => {
  // generous margins: the machine may be loaded (timers late), the property is the same
  const server = await RudpSocket.bind({ secret: SECRET, idleTimeoutMs: 1000 });
  const client = await RudpSocket.bind({ secret: SECRET, idleTimeoutMs: 1000 });
  const accepted = once(server, 'connection');
  const conn = await client.connect(server.address(), { timeoutMs: 2000 });
  const [sconn] = (await accepted) as [RudpConnection];
  const errors: Error[] = [];
  sconn.on('error', (e: Error) => errors.push(e));
  // The point of the test: real time well past the 1 s idle timeout, with only keepalives.
  await new Promise(r => setTimeout(r, 2500));
  t.false(conn.destroyed);
  t.deepEqual(errors, []);
  conn.write(Buffer.from('still here'));
  const [chunk] = (await once(sconn, 'data')) as [Buffer];
  t.is(chunk.toString(), 'still here');
  await client.close();
  await server.close();
});

test('a restarted peer is detected by stateless reset, fast', async t => {
  const tap = await TapSocket.bind();
  const server = await RudpSocket.bind({ secret: SECRET, socket: tap });
  const { port } = server.address();
  const client = await RudpSocket.bind({ secret: SECRET, idleTimeoutMs: 60_000 });
  const conn = await client.connect(server.address(), { timeoutMs: 2000 });
  // a crash: the server's process is gone without a CLOSE
  tap.dropSend = () => true;
  await server.close();
  const restarted = await RudpSocket.bind({ secret: SECRET, port });
  const errored = once(conn, 'error');
  conn.write(Buffer.from('hello, anyone?'));
  const [err] = (await errored) as [Error];
  t.is(err.name, 'UnavailableError');
  t.regex(err.message, /reset/);
  t.true(restarted.stats().statelessResetsSent >= 1);
  t.true((restarted.stats().drops.unknown_connection ?? 0) >= 1);
  await client.close();
  await restarted.close();
});

test('a reader that stops reading stalls the writer with bounded buffers; data resumes intact', async t => {
  const window = 256 * 1024;
  const sendBuffer = 256 * 1024;
  const server = await RudpSocket.bind({
    secret: SECRET,
    receiveWindowBytes: window,
    highWaterMark: 64 * 1024,
  });
  const client = await RudpSocket.bind({
    secret: SECRET,
    sendBufferBytes: sendBuffer,
    highWaterMark: 64 * 1024,
  });
  const accepted = once(server, 'connection');
  const conn = await client.connect(server.address(), { timeoutMs: 2000 });
  const [sconn] = (await accepted) as [RudpConnection];
  sconn.pause();
  const data = randomBytes(8 * 1024 * 1024);
  let offset = 0;
  // write until write() says stop
  while (offset < data.length && conn.write(data.subarray(offset, offset + 16 * 1024)))
    offset += 16 * 1024;
  offset += 16 * 1024;
  await waitFor(
    () => conn.stats().bytesInFlight === 0 && conn.stats().streamBytesSent >= window,
    5000
  );
  const st = conn.stats();
  const sst = sconn.stats();
  t.true(offset < data.length, 'the writer was stopped');
  t.true(
    st.streamBytesSent <= window + 64 * 1024,
    `sent ${st.streamBytesSent} within the peer window`
  );
  t.true(sst.receiveBufferBytes <= window, 'receiver buffer bounded by the window');
  t.true(conn.writableLength <= 64 * 1024 + 16 * 1024, 'writable queue bounded');
  const received = readAll(sconn);
  sconn.resume();
  const rest = async (): Promise<void> => {
    while (offset < data.length) {
      const chunk = data.subarray(offset, offset + 16 * 1024);
      offset += chunk.length;
      if (!conn.write(chunk)) await once(conn, 'drain');
    }
    conn.end();
  };
  await rest();
  const got = await received;
  t.true(got.equals(data));
  await waitFor(() => conn.stats().bytesInFlight === 0, 5000);
  await client.close();
  await server.close();
});

test('IPv6: connect and transfer over ::1', async t => {
  const server = await RudpSocket.bind({ host: '::1', secret: SECRET });
  const client = await RudpSocket.bind({ host: '::1', secret: SECRET });
  server.on('connection', (c: RudpConnection) => c.pipe(c));
  const conn = await client.connect(
    { host: '::1', port: server.address().port },
    { timeoutMs: 2000 }
  );
  t.is(conn.remoteAddress.host, '::1');
  const received = readAll(conn);
  conn.end(Buffer.from('over ipv6'));
  t.is((await received).toString(), 'over ipv6');
  await client.close();
  await server.close();
});

test('jumbo datagrams: both sides at 8972 B fill them; a peer at 1472 B caps the connection', async t => {
  const data = randomBytes(512 * 1024);
  for (const [clientSize, expectedMax] of [
    [8972, 8972],
    [1472, 1472],
  ] as const) {
    const tap = await TapSocket.bind(clientSize);
    const server = await RudpSocket.bind({ secret: SECRET, maxDatagramSize: 8972 });
    const client = await RudpSocket.bind({
      secret: SECRET,
      maxDatagramSize: clientSize,
      socket: tap,
    });
    server.on('connection', (c: RudpConnection) => c.pipe(c));
    const conn = await client.connect(server.address(), { timeoutMs: 2000 });
    const received = readAll(conn);
    conn.end(data);
    t.true((await received).equals(data), `echo intact at ${clientSize}`);
    const largest = Math.max(...tap.sent.map(d => d.length));
    t.is(largest, expectedMax, `largest datagram sent with a ${clientSize}-byte client`);
    await client.close();
    await server.close();
  }
});

test('bad AEAD settings are refused before any socket is bound', async t => {
  const aes = await t.throwsAsync(
    RudpSocket.bind({ secret: SECRET, aead: 'aes-256-gcm', aeadBackend: 'libsodium' })
  );
  t.is(aes?.name, 'InvalidArgumentError');
  t.regex(aes?.message ?? '', /libsodium supports chacha20-poly1305 only/);
  const bogus = await t.throwsAsync(
    RudpSocket.bind({ secret: SECRET, aeadBackend: 'boringssl' as 'node' })
  );
  t.regex(bogus?.message ?? '', /aeadBackend must be one of auto, openssl, libsodium, node/);
  // AES-256-GCM end to end, node:crypto on one side and OpenSSL through our addon on the other
  const server = await RudpSocket.bind({
    secret: SECRET,
    aead: 'aes-256-gcm',
    aeadBackend: 'node',
  });
  const client = await RudpSocket.bind({ secret: SECRET, aead: 'aes-256-gcm' });
  server.on('connection', (c: RudpConnection) => c.pipe(c));
  t.is(server.stats().aeadBackend, 'node:crypto');
  t.is(client.stats().aeadBackend, 'openssl');
  const conn = await client.connect(server.address(), { timeoutMs: 2000 });
  const received = readAll(conn);
  conn.end(Buffer.from('gcm'));
  t.is((await received).toString(), 'gcm');
  await client.close();
  await server.close();
});
