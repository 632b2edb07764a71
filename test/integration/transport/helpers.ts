import type { DatagramSocket, RemoteInfo } from '../../../src/transport';
import { bindUdp } from '../../../src/transport';
import type { RudpConnection } from '../../../src/transport';

import { waitFor as waitUntil } from '../../helpers/wait';

export const SECRET = Buffer.from('integration-test-cluster-secret!');

/** Wraps a DatagramSocket: records sent datagrams and can drop some of them. */
export class TapSocket implements DatagramSocket {
  get kind(): string {
    return this.inner.kind;
  }
  readonly sent: Buffer[] = [];
  /** Return true to drop a datagram being sent. */
  dropSend: (d: Buffer) => boolean = () => false;
  dropReceive: (d: Buffer) => boolean = () => false;
  constructor(readonly inner: DatagramSocket) {}
  static async bind(maxDatagramSize = 1472): Promise<TapSocket> {
    // the default driver (batch when built): the fault tests run over what nodes use
    return new TapSocket(await bindUdp('127.0.0.1', 0, { maxDatagramSize }));
  }
  send(parts: Buffer[], port: number, address: string): void {
    const d = Buffer.concat(parts);
    if (this.sent.length < 10_000) this.sent.push(d);
    if (this.dropSend(d)) return;
    this.inner.send([d], port, address);
  }
  onMessage(handler: (msg: Buffer, from: RemoteInfo) => void): void {
    this.inner.onMessage((m, f) => {
      if (!this.dropReceive(m)) handler(m, f);
    });
  }
  address(): { host: string; port: number } {
    return this.inner.address();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

export function readAll(conn: RudpConnection): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    conn.on('data', (c: Buffer) => parts.push(c));
    conn.on('end', () => resolve(Buffer.concat(parts)));
    conn.on('error', reject);
  });
}

/** test/helpers/wait.ts's waitFor; the timeout error quotes the condition's source. */
export function waitFor(cond: () => boolean, timeoutMs: number): Promise<void> {
  return waitUntil(String(cond), cond, timeoutMs);
}
