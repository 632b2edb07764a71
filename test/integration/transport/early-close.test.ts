/**
 * A peer that accepts a connection and closes its socket at once (a node draining on
 * SIGTERM while a peer reconnects, found by `make chaos`): the dialler can receive the
 * handshake reply and the CLOSE in one batch of datagrams. connect() resolves on the first,
 * and the CLOSE destroys the connection before the caller's `.then` attaches listeners:
 * the 'error' then must not be an uncaught exception (it crashed the dialling node).
 */
import test from 'ava';
import { once } from 'node:events';
import { RudpSocket } from '../../../src/transport';
import type { DatagramSocket, RemoteInfo } from '../../../src/transport';
import { SECRET, TapSocket, waitFor } from './helpers';

/** Holds received datagrams while `holding`; release() hands them over in one go. */
class HoldingSocket extends TapSocket {
  holding = true;
  private held: Array<[Buffer, RemoteInfo]> = [];
  private handler: (msg: Buffer, from: RemoteInfo) => void = () => undefined;

  get heldCount(): number {
    return this.held.length;
  }

  override onMessage(handler: (msg: Buffer, from: RemoteInfo) => void): void {
    this.handler = handler;
    super.onMessage((m, f) => {
      if (this.holding) this.held.push([m, f]);
      else handler(m, f);
    });
  }

  /** Every held datagram, synchronously: one I/O turn, as a batch receive delivers them. */
  release(): void {
    this.holding = false;
    const all = this.held;
    this.held = [];
    for (const [m, f] of all) this.handler(m, f);
  }

  static async wrap(): Promise<HoldingSocket> {
    const tap = await TapSocket.bind();
    return new HoldingSocket(tap.inner as DatagramSocket);
  }
}

test('handshake reply and CLOSE in one receive batch: connect settles, no uncaught error', async t => {
  const server = await RudpSocket.bind({ secret: SECRET });
  const holding = await HoldingSocket.wrap();
  const client = await RudpSocket.bind({ secret: SECRET, socket: holding });
  const connecting = client.connect(server.address(), { timeoutMs: 3000 });
  // The server's handshake reply is held at the client...
  await waitFor(() => holding.heldCount > 0, 3000);
  const heldBeforeClose = holding.heldCount;
  // ...and the server closes its socket: a CLOSE ('socket closed') for the half-open connection.
  await server.close();
  await waitFor(() => holding.heldCount > heldBeforeClose, 3000);
  holding.release();
  // Either connect fails, or it hands over a connection that is already closed.
  const outcome = await connecting.then(
    async conn => {
      if (!conn.destroyed) await once(conn, 'close');
      return 'closed connection';
    },
    (err: Error) => `rejected: ${err.name}`
  );
  t.log(outcome);
  t.true(outcome === 'closed connection' || outcome.startsWith('rejected'));
  await client.close();
});
