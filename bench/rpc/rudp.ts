/** The reliable-UDP transport as the benchmark uses it (src/transport's RudpSocket). */
import type { Duplex } from 'node:stream';
import { RudpSocket } from '../../src/transport';

/** The same cluster secret on both sides (the benchmark's own, not the dev default). */
const BENCH_SECRET = Buffer.alloc(32, 0x5a);

/** `udp_driver/aead_backend` the socket says it runs on (reported, not assumed). */
function stackOf(sock: RudpSocket): string {
  const st = sock.stats();
  return `${st.udpDriver}/${st.aeadBackend}`;
}

export async function listenRudp(
  onConn: (c: Duplex) => void,
  port = 0
): Promise<{ port: number; stack: string; close: () => Promise<void> }> {
  const sock = await RudpSocket.bind({ host: '127.0.0.1', port, secret: BENCH_SECRET });
  sock.on('connection', onConn);
  return { port: sock.address().port, stack: stackOf(sock), close: () => sock.close() };
}

export async function dialRudp(
  port: number
): Promise<{ conn: Duplex; stack: string; close: () => Promise<void> }> {
  const sock = await RudpSocket.bind({ host: '127.0.0.1', port: 0, secret: BENCH_SECRET });
  const conn = await sock.connect({ host: '127.0.0.1', port }, { timeoutMs: 10_000 });
  return { conn, stack: stackOf(sock), close: () => sock.close() };
}
