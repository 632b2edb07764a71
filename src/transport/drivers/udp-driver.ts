/**
 * The thin node:dgram driver: the only file of the transport that touches a real socket.
 * It implements DatagramSocket for IPv4 and IPv6.
 */
import { createSocket } from 'node:dgram';
import type { Socket, SocketOptions } from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns';
import { isIP } from 'node:net';
import type { DatagramSocket, DriverStats, RemoteInfo } from './datagram-socket';

/** Kernel socket buffers we ask for (the kernel caps them at net.core.[rw]mem_max). */
const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * node:dgram resolves the address of every send with dns.lookup, which answers even an IP
 * literal on the next tick: a closure, a tick and a regex per datagram. The transport only
 * sends to IP literals, so they resolve at once (the send happens inside send()); names
 * still go to dns.lookup.
 */
const literalLookup: NonNullable<SocketOptions['lookup']> = (address, options, callback) => {
  const family = isIP(address);
  if (family !== 0) callback(null, address, family);
  else dnsLookup(address, options, callback);
};

export class UdpDriver implements DatagramSocket {
  readonly kind = 'dgram';
  /** Send errors (e.g. ICMP unreachable surfaced as ECONNREFUSED); counted, never thrown. */
  sendErrors = 0;
  private handler: ((msg: Buffer, from: RemoteInfo) => void) | null = null;
  private closed = false;
  private datagramsSent = 0;
  private datagramsReceived = 0;

  /** An IPv6 (dual-stack) socket: IPv4 peers are reached through v4-mapped addresses. */
  private readonly ipv6: boolean;

  private constructor(private readonly sock: Socket) {
    this.ipv6 = sock.address().family === 'IPv6';
    sock.on('message', (msg, rinfo) => {
      this.datagramsReceived++;
      this.handler?.(msg, rinfo);
    });
    sock.on('error', () => {
      this.sendErrors++;
    });
  }

  static bind(host: string, port: number): Promise<UdpDriver> {
    const sock = createSocket({
      type: host.includes(':') ? 'udp6' : 'udp4',
      lookup: literalLookup,
    });
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      sock.once('error', onError);
      sock.bind(port, host, () => {
        sock.off('error', onError);
        try {
          sock.setRecvBufferSize(SOCKET_BUFFER_BYTES);
          sock.setSendBufferSize(SOCKET_BUFFER_BYTES);
        } catch {
          // best effort: the kernel limit applies
        }
        resolve(new UdpDriver(sock));
      });
    });
  }

  send(parts: Buffer[], port: number, address: string): void {
    if (this.closed) return;
    try {
      // node:dgram does not map an IPv4 destination on an IPv6 socket itself (EINVAL):
      // do what the batch driver does (native/udp_batch.c).
      const to = this.ipv6 && isIP(address) === 4 ? `::ffff:${address}` : address;
      this.sock.send(parts, port, to);
      this.datagramsSent++;
    } catch {
      this.sendErrors++;
    }
  }

  onMessage(handler: (msg: Buffer, from: RemoteInfo) => void): void {
    this.handler = handler;
  }

  address(): { host: string; port: number } {
    const a = this.sock.address();
    return { host: a.address, port: a.port };
  }

  stats(): DriverStats {
    return {
      sendErrors: this.sendErrors,
      sendQueueFull: 0,
      receiveErrors: 0,
      receiveTruncated: 0,
      // node:dgram: one send and one receive call per datagram
      sendCalls: this.datagramsSent,
      receiveCalls: this.datagramsReceived,
      gsoDatagrams: 0,
    };
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    // node:dgram resolves the address of each send on the next tick: closing at once would
    // drop the last datagrams (the CLOSE frames that tell peers we are gone)
    return new Promise(resolve => setImmediate(() => this.sock.close(() => resolve())));
  }
}
