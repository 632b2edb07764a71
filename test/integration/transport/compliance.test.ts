/**
 * Transport compliance: one table of cases (connect, ordered delivery of many messages, a
 * large message spanning packets, close with drain, peer restart) run over each real UDP
 * driver (`batch`, `dgram`) and over the seeded virtual network with loss, duplication
 * and reordering. A driver or network that passes the table carries a node.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { RudpSocket, VirtualNetwork, bindUdp } from '../../../src/transport';
import type { DatagramSocket, RudpConnection, UdpDriverKind } from '../../../src/transport';
import { SECRET, TapSocket, readAll, waitFor } from './helpers';

/** Sockets of one transport under test: a server at a fixed address, and clients. */
interface Rig {
  /** Datagrams were lost, duplicated and reordered on the way (virtual network only). */
  readonly lossy: boolean;
  /** Raw datagram socket at the server's address (the same address each time). */
  serverDatagrams(): Promise<DatagramSocket>;
  client(): Promise<RudpSocket>;
  /** The server's address as clients dial it. */
  serverAddress(): { host: string; port: number };
  /** Datagrams the network lost (0 on real UDP). */
  lost(): number;
  teardown(): void;
}

function udpRig(driver: UdpDriverKind): Rig {
  let port = 0;
  return {
    lossy: false,
    async serverDatagrams() {
      const d = await bindUdp('127.0.0.1', port, { driver, maxDatagramSize: 1472 });
      port = d.address().port;
      return d;
    },
    client: () => RudpSocket.bind({ secret: SECRET, udpDriver: driver }),
    serverAddress: () => ({ host: '127.0.0.1', port }),
    lost: () => 0,
    teardown: () => undefined,
  };
}

function virtualRig(seed: number): Rig {
  // The transport's timers are unref'd and the virtual network has no socket: keep the
  // loop alive while only a retransmission timer is pending.
  const keepAlive = setInterval(() => undefined, 1000);
  const net = new VirtualNetwork({
    seed,
    defaults: { lossRate: 0.03, reorderRate: 0.1, duplicateRate: 0.02, delayMs: [0.5, 2] },
    clock: {
      now: () => performance.now(),
      setTimer: (ms, fn) => {
        const h = setTimeout(fn, ms);
        return { cancel: () => clearTimeout(h) };
      },
    },
  });
  return {
    lossy: true,
    serverDatagrams: () => Promise.resolve(net.socket('10.0.0.2', 7401)),
    client: () => RudpSocket.bind({ secret: SECRET, socket: net.socket('10.0.0.1') }),
    serverAddress: () => ({ host: '10.0.0.2', port: 7401 }),
    lost: () => net.drops.get('loss'),
    teardown: () => {
      net.stop();
      clearInterval(keepAlive);
    },
  };
}

interface EchoServer {
  server: RudpSocket;
  tap: TapSocket;
  /** Errors of the server's connections (none when every close is graceful). */
  errors: Error[];
}

/** A server that echoes every connection, over a tap (so a test can silence it). */
async function echoServer(rig: Rig): Promise<EchoServer> {
  const tap = new TapSocket(await rig.serverDatagrams());
  const server = await RudpSocket.bind({ secret: SECRET, socket: tap });
  const errors: Error[] = [];
  server.on('connection', (c: RudpConnection) => {
    c.on('error', e => errors.push(e));
    c.pipe(c);
  });
  return { server, tap, errors };
}

const CONNECT = { timeoutMs: 5000 };

interface Case {
  name: string;
  run(t: ExecutionContext, rig: Rig): Promise<void>;
}

const CASES: Case[] = [
  {
    name: 'connect: both sides see one established connection',
    async run(t, rig) {
      const { server, errors } = await echoServer(rig);
      const client = await rig.client();
      const accepted = once(server, 'connection');
      const conn = await client.connect(rig.serverAddress(), CONNECT);
      const [sconn] = (await accepted) as [RudpConnection];
      t.deepEqual(conn.remoteAddress, rig.serverAddress());
      t.is(sconn.remoteAddress.port, client.address().port);
      t.is(conn.stats().state, 'established');
      t.is(client.stats().connections, 1);
      t.is(server.stats().connections, 1);
      const received = readAll(conn);
      conn.end();
      t.is((await received).length, 0);
      t.deepEqual(errors, []);
      await client.close();
      await server.close();
    },
  },
  {
    name: 'ordered delivery of 500 separately written messages',
    async run(t, rig) {
      const { server, errors } = await echoServer(rig);
      const client = await rig.client();
      const conn = await client.connect(rig.serverAddress(), CONNECT);
      const messages: Buffer[] = [];
      for (let i = 0; i < 500; i++) {
        const m = Buffer.alloc(2 + ((i * 37) % 700), i & 0xff);
        m.writeUInt16BE(i, 0);
        messages.push(m);
      }
      const received = readAll(conn);
      for (const m of messages) conn.write(m);
      conn.end();
      const echoed = await received;
      t.true(echoed.equals(Buffer.concat(messages)), 'every byte, in write order');
      t.deepEqual(errors, []);
      await client.close();
      await server.close();
    },
  },
  {
    name: 'a 2 MiB message spans packets and arrives intact',
    async run(t, rig) {
      const { server, errors } = await echoServer(rig);
      const client = await rig.client();
      const conn = await client.connect(rig.serverAddress(), CONNECT);
      const big = randomBytes(2 * 1024 * 1024);
      const received = readAll(conn);
      conn.end(big);
      t.true((await received).equals(big));
      const st = conn.stats();
      t.true(st.packetsSent > big.length / 1472, `${st.packetsSent} packets`);
      // at least every byte once (spurious retransmissions arrive twice and count twice)
      t.true(st.streamBytesReceived >= big.length);
      t.deepEqual(errors, []);
      if (rig.lossy) {
        t.true(rig.lost() > 0, 'the network lost datagrams');
        t.true(st.retransmissions > 0, 'and the transport retransmitted');
      }
      await client.close();
      await server.close();
    },
  },
  {
    name: 'close drains: data written before end() is delivered, both sides close cleanly',
    async run(t, rig) {
      const { server } = await echoServer(rig);
      const client = await rig.client();
      const accepted = once(server, 'connection');
      const conn = await client.connect(rig.serverAddress(), CONNECT);
      const [sconn] = (await accepted) as [RudpConnection];
      const errors: Error[] = [];
      conn.on('error', e => errors.push(e));
      sconn.on('error', e => errors.push(e));
      const data = randomBytes(256 * 1024);
      const received = readAll(conn);
      const closed = Promise.all([once(conn, 'close'), once(sconn, 'close')]);
      conn.end(data);
      t.true((await received).equals(data));
      await closed;
      t.deepEqual(errors, []);
      // every byte at least once (a spurious retransmission counts twice)
      t.true(sconn.stats().streamBytesReceived >= data.length);
      // both engines finish closing (CLOSE acknowledged, or the linger ran out)
      await waitFor(
        () => client.stats().connections === 0 && server.stats().connections === 0,
        5000
      );
      t.pass();
      await client.close();
      await server.close();
    },
  },
  {
    name: 'peer restart: the old connection fails fast (stateless reset), a new one works',
    async run(t, rig) {
      const first = await echoServer(rig);
      const client = await rig.client();
      const conn = await client.connect(rig.serverAddress(), CONNECT);
      const before = new Promise<Buffer>(resolve => conn.once('data', resolve));
      conn.write(Buffer.from('before'));
      t.is((await before).toString(), 'before');
      // a crash: the server goes away without a word (its CLOSE never leaves)
      first.tap.dropSend = () => true;
      await first.server.close();
      const second = await echoServer(rig);
      const failed = new Promise<Error>(resolve => conn.once('error', resolve));
      conn.write(Buffer.from('to the old instance'));
      const start = Date.now();
      const err = await failed;
      t.is(err.name, 'UnavailableError');
      t.regex(err.message, /reset/);
      t.true(Date.now() - start < 3000, `failed after ${Date.now() - start} ms`);
      const again = await client.connect(rig.serverAddress(), CONNECT);
      const received = readAll(again);
      again.end(Buffer.from('after restart'));
      t.is((await received).toString(), 'after restart');
      await client.close();
      await second.server.close();
    },
  },
];

const RIGS: { name: string; make: () => Rig }[] = [
  { name: 'batch', make: () => udpRig('batch') },
  { name: 'dgram', make: () => udpRig('dgram') },
  { name: 'virtual (loss, duplication, reordering)', make: () => virtualRig(7) },
];

for (const r of RIGS) {
  for (const c of CASES) {
    test(`${r.name} › ${c.name}`, async t => {
      const rig = r.make();
      t.teardown(() => rig.teardown());
      await c.run(t, rig);
    });
  }
}
