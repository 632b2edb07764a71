/**
 * The socket's configuration: what RudpSocket.bind() takes, its validation and defaults,
 * and the shapes of its stats and drop reasons.
 */
import { InvalidArgumentError } from '../common';
import {
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_ACK_DELAY_MS,
  DEFAULT_MAX_DATAGRAM_SIZE,
  DEFAULT_RECEIVE_WINDOW_BYTES,
  DEFAULT_SEND_BUFFER_BYTES,
  MAX_CONNECTIONS,
  MIN_DATAGRAM_SIZE,
} from './constants';
import type { CongestionAlgorithm } from './congestion';
import {
  AEAD_BACKEND_PREFERENCES,
  DEFAULT_AEAD,
  assertClusterSecrets,
} from './crypto/packet-protection';
import type { AeadAlgorithm, AeadBackend, AeadBackendPreference } from './crypto/packet-protection';
import type { DatagramSocket } from './drivers/datagram-socket';
import type { UdpDriverPreference } from './drivers/udp-binding';
import type { Clock, DropLedger } from '../common';

/** Minimal logger (pino-compatible) for the development-secret warning. */
export interface TransportLogger {
  warn(obj: object, msg: string): void;
}

export interface RudpSocketInit {
  /** @default '127.0.0.1' */
  host?: string;
  /** @default 0 (any free port) */
  port?: number;
  /** Cluster secret; without one a built-in development secret is used and a warning logged. */
  secret?: Buffer;
  /**
   * Several cluster secrets, during a rotation (instead of `secret`): the first is sent
   * with, an INITIAL MACed with any of them is accepted (at most MAX_CLUSTER_SECRETS).
   */
  secrets?: readonly Buffer[];
  /** @default 'bbr' */
  congestion?: CongestionAlgorithm;
  /** Close a connection after this long without a packet (0 = never). @default 30000 */
  idleTimeoutMs?: number;
  /** PING after this long without sending (0 = off). @default idleTimeoutMs / 3 */
  keepAliveMs?: number;
  /** Largest UDP payload. @default 1472 */
  maxDatagramSize?: number;
  /** Flow-control window per connection (bytes). @default 8 MiB */
  receiveWindowBytes?: number;
  /** Unacknowledged bytes per connection before write() waits. @default 8 MiB */
  sendBufferBytes?: number;
  /** Duplex highWaterMark. @default 1 MiB */
  highWaterMark?: number;
  /** @default 'chacha20-poly1305' */
  aead?: AeadAlgorithm;
  /**
   * Which implementation runs the AEAD (same wire format either way): `openssl` needs our
   * addon (make build), `libsodium` the optional package sodium-native. @default 'auto'
   */
  aeadBackend?: AeadBackendPreference;
  /**
   * The real UDP driver: `batch` (recvmmsg/sendmmsg through meshwire's native addon),
   * `dgram` (node:dgram), or `auto` (batch when the addon is built). @default 'auto'
   */
  udpDriver?: UdpDriverPreference;
  /** @default 2 */
  maxAckDelayMs?: number;
  /** @default 4096 */
  maxConnections?: number;
  /** Use this datagram socket (e.g. a VirtualSocket) instead of binding a UDP socket. */
  socket?: DatagramSocket;
  clock?: Clock;
  logger?: TransportLogger;
  /**
   * Where the socket's and its connections' drops are recorded (totals, debug logs).
   * @default a ledger of its own
   */
  drops?: DropLedger;
}

export interface ConnectOptions {
  /** @default 5000 */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export type SocketDropReason =
  | 'unknown_connection'
  | 'malformed'
  | 'bad_auth'
  | 'oversized'
  | 'version'
  | 'half_open_limit'
  | 'connection_limit'
  | 'reset_rate_limited'
  | 'closed';

export interface SocketStats {
  connections: number;
  halfOpen: number;
  datagramsReceived: number;
  datagramsSent: number;
  bytesReceived: number;
  bytesSent: number;
  statelessResetsSent: number;
  /** Cluster secrets accepted now (the first is sent with). */
  clusterSecrets: number;
  /**
   * Connections accepted by the index of the secret their INITIAL matched (0 = the sending
   * secret), counted since start; one entry per accepted secret.
   */
  handshakesAcceptedBySecret: number[];
  /** The AEAD and the implementation that runs it. */
  aead: AeadAlgorithm;
  aeadBackend: AeadBackend;
  /** The datagram driver: 'batch', 'dgram' or 'virtual'. */
  udpDriver: string;
  /** Socket-level drops plus the drops of every connection (live and closed). */
  drops: Record<string, number>;
  /**
   * The driver's system calls: datagrams per call is the batch it achieves (with GSO
   * datagrams inside one message); absent for the virtual network.
   */
  udpCalls?: { sendCalls: number; receiveCalls: number; gsoDatagrams: number };
}

/** The settings a socket runs with, defaults applied. */
export type SocketConfig = Required<
  Pick<
    RudpSocketInit,
    | 'congestion'
    | 'idleTimeoutMs'
    | 'keepAliveMs'
    | 'maxDatagramSize'
    | 'receiveWindowBytes'
    | 'sendBufferBytes'
    | 'highWaterMark'
    | 'aead'
    | 'maxAckDelayMs'
    | 'maxConnections'
  >
>;

/** `init` with every default applied. */
export function socketConfig(init: RudpSocketInit): SocketConfig {
  const idle = init.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  return {
    congestion: init.congestion ?? 'bbr',
    idleTimeoutMs: idle,
    keepAliveMs: init.keepAliveMs ?? (idle > 0 ? idle / 3 : 0),
    maxDatagramSize: init.maxDatagramSize ?? DEFAULT_MAX_DATAGRAM_SIZE,
    receiveWindowBytes: init.receiveWindowBytes ?? DEFAULT_RECEIVE_WINDOW_BYTES,
    sendBufferBytes: init.sendBufferBytes ?? DEFAULT_SEND_BUFFER_BYTES,
    highWaterMark: init.highWaterMark ?? 1024 * 1024,
    aead: init.aead ?? DEFAULT_AEAD,
    maxAckDelayMs: init.maxAckDelayMs ?? DEFAULT_MAX_ACK_DELAY_MS,
    maxConnections: init.maxConnections ?? MAX_CONNECTIONS,
  };
}

/** Throws InvalidArgumentError for a setting out of range. */
export function validate(init: RudpSocketInit): void {
  const mds = init.maxDatagramSize;
  if (mds !== undefined && (!Number.isInteger(mds) || mds < MIN_DATAGRAM_SIZE || mds > 65507)) {
    throw new InvalidArgumentError(
      `maxDatagramSize must be an integer in [${MIN_DATAGRAM_SIZE}, 65507]`
    );
  }
  const nonNeg = [
    'idleTimeoutMs',
    'keepAliveMs',
    'receiveWindowBytes',
    'sendBufferBytes',
    'maxAckDelayMs',
  ] as const;
  for (const k of nonNeg) {
    const v = init[k];
    if (v !== undefined && !(typeof v === 'number' && v >= 0 && Number.isFinite(v))) {
      throw new InvalidArgumentError(`${k} must be a finite number >= 0`);
    }
  }
  if (init.secret !== undefined && init.secret.length < 16) {
    throw new InvalidArgumentError('secret must be at least 16 bytes');
  }
  if (init.secrets !== undefined) {
    if (init.secret !== undefined)
      throw new InvalidArgumentError('give secret or secrets, not both');
    assertClusterSecrets(init.secrets);
  }
  if (init.congestion !== undefined && !['bbr', 'cubic', 'newreno'].includes(init.congestion)) {
    throw new InvalidArgumentError("congestion must be 'bbr', 'cubic' or 'newreno'");
  }
  const backend = init.aeadBackend;
  if (backend !== undefined && !AEAD_BACKEND_PREFERENCES.includes(backend)) {
    throw new InvalidArgumentError(
      `aeadBackend must be one of ${AEAD_BACKEND_PREFERENCES.join(', ')}`
    );
  }
}
