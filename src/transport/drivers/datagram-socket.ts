/**
 * The one seam between the transport core and the network: core code
 * never imports node:dgram. Implemented by the UDP driver and by the virtual network.
 */

export interface RemoteInfo {
  address: string;
  port: number;
}

/** What a real socket driver dropped or could not do; each becomes a socket drop reason. */
export interface DriverStats {
  /** Datagrams the kernel refused (unreachable, filtered) or with no usable address. */
  sendErrors: number;
  /** Datagrams dropped because the driver's bounded send queue was full. */
  sendQueueFull: number;
  /** Receive calls that failed. */
  receiveErrors: number;
  /** Datagrams longer than the receive slot (the transport also counts them oversized). */
  receiveTruncated: number;
  /**
   * Send and receive system calls (sendmmsg/recvmmsg for the batch driver, one per datagram
   * for node:dgram) and the datagrams that left inside a GSO send, to see the batches a
   * driver achieves (bench/transport). Absent for the virtual network.
   */
  sendCalls?: number;
  receiveCalls?: number;
  gsoDatagrams?: number;
}

export interface DatagramSocket {
  /** Which driver this is ('batch', 'dgram', 'virtual'), for logs and metrics. */
  readonly kind: string;
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
  /** Drop and error counters of a real socket driver. */
  stats?(): DriverStats;
}
