/**
 * The reliable-UDP transport as the benchmark uses it. It is loaded at run time so that
 * this benchmark builds and runs (TCP and NATS only) before src/transport offers
 * `RudpSocket`; `rudpAvailable()` says whether it does.
 */
import type { Duplex } from 'node:stream';

interface RudpSocketLike {
  connect(addr: { host: string; port: number }): Promise<Duplex>;
  on(event: 'connection', fn: (conn: Duplex) => void): unknown;
  close?(): Promise<void> | void;
  address?(): { port: number };
}
interface RudpModule {
  RudpSocket: { bind(addr: { host: string; port: number }): Promise<RudpSocketLike> };
}

function load(): RudpModule | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- optional at run time, see above
    const m = require('../../src/transport') as Partial<RudpModule>;
    return m.RudpSocket && typeof m.RudpSocket.bind === 'function' ? (m as RudpModule) : undefined;
  } catch {
    return undefined;
  }
}

export function rudpAvailable(): boolean {
  return load() !== undefined;
}

export async function listenRudp(
  onConn: (c: Duplex) => void,
  port = 0
): Promise<{ port: number; close: () => Promise<void> }> {
  const mod = load();
  if (!mod) throw new Error('src/transport does not offer RudpSocket yet');
  const sock = await mod.RudpSocket.bind({ host: '127.0.0.1', port });
  sock.on('connection', onConn);
  return { port: sock.address?.().port ?? port, close: async () => void (await sock.close?.()) };
}

export async function dialRudp(
  port: number
): Promise<{ conn: Duplex; close: () => Promise<void> }> {
  const mod = load();
  if (!mod) throw new Error('src/transport does not offer RudpSocket yet');
  const sock = await mod.RudpSocket.bind({ host: '127.0.0.1', port: 0 });
  const conn = await sock.connect({ host: '127.0.0.1', port });
  return { conn, close: async () => void (await sock.close?.()) };
}
