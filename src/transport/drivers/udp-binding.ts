/**
 * Which real UDP driver a socket binds: the batched native one (recvmmsg/sendmmsg) when its
 * addon is built, else node:dgram. Both speak the same wire; only the CPU cost differs.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { InvalidArgumentError } from '../../common';
import {
  BatchUdpDriver,
  batchDriverAvailable,
  batchDriverUnavailableReason,
} from './batch-udp-driver';
import type { DatagramSocket } from './datagram-socket';
import { UdpDriver } from './udp-driver';

export const UDP_DRIVER_PREFERENCES = ['auto', 'batch', 'dgram'] as const;
export type UdpDriverPreference = (typeof UDP_DRIVER_PREFERENCES)[number];
export type UdpDriverKind = 'batch' | 'dgram';

/** The driver a preference gets on this machine; throws InvalidArgumentError if it cannot. */
export function selectUdpDriver(preference: UdpDriverPreference = 'auto'): UdpDriverKind {
  if (!UDP_DRIVER_PREFERENCES.includes(preference)) {
    throw new InvalidArgumentError(
      `udpDriver must be one of ${UDP_DRIVER_PREFERENCES.join(', ')}, not ${String(preference)}`
    );
  }
  if (preference === 'dgram') return 'dgram';
  if (batchDriverAvailable()) return 'batch';
  if (preference === 'batch') {
    throw new InvalidArgumentError(
      `udpDriver batch requested but the native addon is not available: ${batchDriverUnavailableReason()}`
    );
  }
  return 'dgram';
}

/**
 * Binds a real UDP socket with the selected driver. A host name (`localhost`) is resolved
 * first for the batch driver, which binds IP literals only, as node:dgram would do itself.
 */
export async function bindUdp(
  host: string,
  port: number,
  opts: { driver?: UdpDriverPreference; maxDatagramSize: number }
): Promise<DatagramSocket> {
  if (selectUdpDriver(opts.driver) === 'dgram') return UdpDriver.bind(host, port);
  const ip = isIP(host) !== 0 ? host : (await lookup(host)).address;
  return BatchUdpDriver.bind(ip, port, opts.maxDatagramSize);
}
