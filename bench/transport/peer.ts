/**
 * One side of a transport benchmark run (two processes per run; bench/transport/run.sh
 * starts them, in a network namespace). Usage:
 *   node peer.js recv <udp|tcp|rudp> <port> <maxSeconds>
 *   node peer.js send <udp|tcp|rudp> <host> <port> <maxBytes> <maxSeconds> [congestion]
 * The receiver prints one JSON line with bytes, seconds and CPU seconds; so does the sender.
 * Each line also says what this process ran on (`udpDriver`, `aeadBackend`: meshwire's socket
 * stats, node:dgram or the kernel's TCP otherwise; `machine`) and, for meshwire, the driver's
 * system calls over the measured window (`udp`: datagrams per sendmmsg/recvmmsg call).
 */
import { createSocket } from 'node:dgram';
import { createConnection, createServer } from 'node:net';
import type { Socket } from 'node:net';
import { tuneRuntime } from '../../src/common/runtime';
import { RudpSocket } from '../../src/transport';
import type {
  AeadBackendPreference,
  CongestionAlgorithm,
  RudpConnection,
  SocketStats,
  UdpDriverPreference,
} from '../../src/transport';
import { machineInfo } from '../common/cpu';

const SECRET = Buffer.from('meshwire-benchmark-cluster-secret');
/**
 * Datagram size: the transport's default (MTU 1500 - 28), or BENCH_DATAGRAM_SIZE (the jumbo
 * runs use 8972, MTU 9000 - 28) for raw UDP and meshwire alike.
 */
const DATAGRAM = Number(process.env.BENCH_DATAGRAM_SIZE ?? 1472);
/** meshwire's UDP driver: the default (auto: batch when built), or BENCH_UDP_DRIVER. */
const UDP_DRIVER = (process.env.BENCH_UDP_DRIVER ?? 'auto') as UdpDriverPreference;
/** meshwire's AEAD backend: the default (auto: openssl when built), or BENCH_AEAD_BACKEND. */
const AEAD_BACKEND = (process.env.BENCH_AEAD_BACKEND ?? 'auto') as AeadBackendPreference;
const CHUNK = 64 * 1024;

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function report(o: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify({ ...o, machine: machineInfo() }) + '\n');
}

/** What a process moved datagrams and sealed packets with: meshwire's own say, else fixed. */
function stackOf(kind: string, sock: RudpSocket | null): Record<string, string> {
  if (sock) {
    const st = sock.stats();
    return { udpDriver: st.udpDriver, aeadBackend: st.aeadBackend };
  }
  return kind === 'udp'
    ? { udpDriver: 'dgram', aeadBackend: 'none' }
    : { udpDriver: 'kernel TCP', aeadBackend: 'none' };
}

/** The socket's datagram and system-call counts, to difference over the measured window. */
interface CallSnapshot {
  datagramsSent: number;
  datagramsReceived: number;
  sendCalls: number;
  receiveCalls: number;
  gsoDatagrams: number;
}

function callSnapshot(st: SocketStats): CallSnapshot {
  return {
    datagramsSent: st.datagramsSent,
    datagramsReceived: st.datagramsReceived,
    sendCalls: st.udpCalls?.sendCalls ?? 0,
    receiveCalls: st.udpCalls?.receiveCalls ?? 0,
    gsoDatagrams: st.udpCalls?.gsoDatagrams ?? 0,
  };
}

/** Datagrams per send and receive call, and calls per second, between two snapshots. */
function callReport(a: CallSnapshot, b: CallSnapshot, seconds: number): Record<string, number> {
  const d = (k: keyof CallSnapshot): number => b[k] - a[k];
  const per = (x: number, y: number): number => (y > 0 ? Math.round((x / y) * 100) / 100 : 0);
  return {
    datagramsSent: d('datagramsSent'),
    datagramsReceived: d('datagramsReceived'),
    sendCalls: d('sendCalls'),
    receiveCalls: d('receiveCalls'),
    gsoDatagrams: d('gsoDatagrams'),
    datagramsPerSendCall: per(d('datagramsSent'), d('sendCalls')),
    datagramsPerReceiveCall: per(d('datagramsReceived'), d('receiveCalls')),
    sendCallsPerSecond: Math.round(per(d('sendCalls'), seconds)),
    receiveCallsPerSecond: Math.round(per(d('receiveCalls'), seconds)),
  };
}

/**
 * Bytes each process pair moves first, unmeasured, so V8 has optimized the code on both
 * sides, as in a node that has been running (a fresh process needs ~300 ms to reach full
 * speed, 10% of a 256 MiB transfer). Raw UDP, TCP and meshwire alike.
 */
const WARMUP_BYTES = 32 * 1024 * 1024;
/** First byte of raw UDP warm-up datagrams (measured ones are filled with 0x5a). */
const UDP_WARMUP_MARK = 0x57;

async function recv(kind: string, port: number, maxSeconds: number): Promise<void> {
  let cpu0 = cpuSeconds();
  let bytes = 0;
  let first = 0;
  let last = 0;
  let sock: RudpSocket | null = null;
  let calls0: CallSnapshot | undefined;
  const done = (extra: Record<string, unknown> = {}): void => {
    const seconds = (last - first) / 1000;
    report({
      role: 'recv',
      kind,
      bytes,
      seconds,
      cpuSeconds: cpuSeconds() - cpu0,
      ...stackOf(kind, sock),
      ...(sock && calls0 ? { udp: callReport(calls0, callSnapshot(sock.stats()), seconds) } : {}),
      ...extra,
    });
    process.exit(0);
  };
  const count = (n: number): void => {
    const now = performance.now();
    if (first === 0) {
      first = now;
      cpu0 = cpuSeconds();
      if (sock) calls0 = callSnapshot(sock.stats());
    }
    last = now;
    bytes += n;
  };
  setTimeout(() => done({ timedOut: true }), (2 * maxSeconds + 10) * 1000).unref();
  // connection 0 is the warm-up: read and dropped; connection 1 is measured
  let connections = 0;
  if (kind === 'udp') {
    const s = createSocket('udp4');
    s.on('error', () => {
      // ENOBUFS and friends under overload: the datagram is simply lost
    });
    s.on('message', m => {
      if (m.length === 1) done();
      else if (m[0] !== UDP_WARMUP_MARK) count(m.length);
    });
    s.bind(port, '127.0.0.1', () => s.setRecvBufferSize(4 * 1024 * 1024));
  } else if (kind === 'tcp') {
    createServer(c => {
      if (connections++ === 0) {
        c.resume();
        c.on('end', () => c.end());
        return;
      }
      c.on('data', d => count(d.length));
      c.on('end', () => done());
    }).listen(port, '127.0.0.1');
  } else {
    sock = await RudpSocket.bind({
      host: '127.0.0.1',
      port,
      secret: SECRET,
      maxDatagramSize: DATAGRAM,
      udpDriver: UDP_DRIVER,
      aeadBackend: AEAD_BACKEND,
    });
    const bound = sock;
    bound.on('connection', (c: RudpConnection) => {
      if (connections++ === 0) {
        c.resume();
        c.on('end', () => c.end());
        c.on('error', () => {
          // the warm-up's end is not measured
        });
        return;
      }
      c.on('data', (d: Buffer) => count(d.length));
      c.on('end', () => {
        const stats = c.stats();
        // a moment after 'close' before exiting, so our CLOSE leaves and the sender's
        // close completes (the figures are already taken)
        const finish = (): void => {
          setTimeout(() => done({ stats, socket: bound.stats() }), 100);
        };
        // finish our direction too, so the sender's close completes before we exit
        c.end();
        c.once('close', finish);
        setTimeout(finish, 1000).unref();
      });
      c.on('error', e => done({ error: e.message }));
    });
  }
  process.stdout.write('ready\n');
}

/** Writes `maxBytes` (or until `deadline`) of `payload`, ends, and waits for 'close'. */
async function transfer(
  conn: Socket | RudpConnection,
  payload: Buffer,
  maxBytes: number,
  deadline: number
): Promise<number> {
  let sent = 0;
  conn.on('error', () => {
    // the receiver may exit first; the figures come from the receiver
  });
  // read the (empty) other direction, or 'end', and so 'close', never comes
  conn.resume();
  await new Promise<void>(resolve => {
    const pump = (): void => {
      while (sent < maxBytes && performance.now() < deadline) {
        sent += payload.length;
        if (!conn.write(payload)) {
          conn.once('drain', pump);
          return;
        }
      }
      conn.end();
      resolve();
    };
    pump();
  });
  await new Promise(r => {
    conn.once('close', r);
    setTimeout(r, 3000).unref();
  });
  return sent;
}

async function send(
  kind: string,
  host: string,
  port: number,
  maxBytes: number,
  maxSeconds: number,
  cc: string
): Promise<void> {
  const payload = Buffer.alloc(CHUNK, 0x5a);
  if (kind === 'udp') {
    const s = createSocket('udp4');
    const d = Buffer.alloc(DATAGRAM, 0x5a);
    const warm = Buffer.alloc(DATAGRAM, UDP_WARMUP_MARK);
    s.on('error', () => {
      // send errors under overload (ENOBUFS) are losses, not failures
    });
    await new Promise<void>(r => s.connect(port, host, () => r()));
    // blast in bursts, yielding so the loop can flush sends; bounded by bytes and time
    const blast = async (datagram: Buffer, max: number, deadline: number): Promise<number> => {
      let n = 0;
      while (n < max && performance.now() < deadline) {
        for (let i = 0; i < 64; i++) {
          s.send(datagram);
          n += DATAGRAM;
        }
        await new Promise(r => setImmediate(r));
      }
      return n;
    };
    await blast(warm, WARMUP_BYTES, performance.now() + maxSeconds * 1000);
    await new Promise(r => setTimeout(r, 50));
    const cpu0 = cpuSeconds();
    const t0 = performance.now();
    const sent = await blast(d, maxBytes, t0 + maxSeconds * 1000);
    for (let i = 0; i < 20; i++) {
      s.send(Buffer.alloc(1));
      await new Promise(r => setTimeout(r, 10));
    }
    report({
      role: 'send',
      kind,
      bytes: sent,
      seconds: (performance.now() - t0) / 1000,
      cpuSeconds: cpuSeconds() - cpu0,
      ...stackOf(kind, null),
    });
    s.close();
    return;
  }
  const sock =
    kind === 'rudp'
      ? await RudpSocket.bind({
          secret: SECRET,
          congestion: cc as CongestionAlgorithm,
          maxDatagramSize: DATAGRAM,
          udpDriver: UDP_DRIVER,
          aeadBackend: AEAD_BACKEND,
        })
      : null;
  const open = (): Promise<Socket | RudpConnection> =>
    sock
      ? sock.connect({ host, port }, { timeoutMs: 5000 })
      : new Promise<Socket>(resolve => {
          const c = createConnection({ host, port }, () => resolve(c));
        });
  await transfer(await open(), payload, WARMUP_BYTES, performance.now() + maxSeconds * 1000);
  const cpu0 = cpuSeconds();
  const t0 = performance.now();
  const calls0 = sock ? callSnapshot(sock.stats()) : undefined;
  const conn = await open();
  const sent = await transfer(conn, payload, maxBytes, t0 + maxSeconds * 1000);
  const seconds = (performance.now() - t0) / 1000;
  const stats = sock ? (conn as RudpConnection).stats() : undefined;
  report({
    role: 'send',
    kind,
    bytes: sent,
    seconds,
    cpuSeconds: cpuSeconds() - cpu0,
    stats,
    ...stackOf(kind, sock),
    ...(sock && calls0 ? { udp: callReport(calls0, callSnapshot(sock.stats()), seconds) } : {}),
  });
  process.exit(0);
}

// every kind (raw UDP, TCP, meshwire) runs with the same V8 tuning as a meshwire node
tuneRuntime();
const [mode, kind, ...rest] = process.argv.slice(2);
if (mode === 'recv') void recv(kind, Number(rest[0]), Number(rest[1]));
else void send(kind, rest[0], Number(rest[1]), Number(rest[2]), Number(rest[3]), rest[4] ?? 'bbr');
