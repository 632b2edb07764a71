/**
 * The one seam between the transport core and the network (STYLE lesson 3): core code
 * never imports node:dgram. Implemented by the UDP driver and by the virtual network.
 */

export interface RemoteInfo {
  address: string;
  port: number;
}

export interface DatagramSocket {
  /**
   * Sends one datagram made of the concatenation of `parts`. Fire and forget: a dead or
   * unreachable address is not an error here (datagrams may be lost anyway). The parts
   * must not be modified afterwards.
   */
  send(parts: Buffer[], port: number, address: string): void;
  /** Installs the receive handler (one per socket). */
  onMessage(handler: (msg: Buffer, from: RemoteInfo) => void): void;
  /** Local address. */
  address(): { host: string; port: number };
  close(): Promise<void>;
}
