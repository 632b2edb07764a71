/**
 * The engine's public types: its configuration, the events it raises, its close codes,
 * drop reasons and counters.
 */
import type { DropLedger } from '../../common';
import type { CongestionAlgorithm } from '../congestion';
import type {
  AeadAlgorithm,
  AeadBackend,
  ClusterKeyring,
  ClusterKeys,
} from '../crypto/packet-protection';
import type { TransportParams } from '../wire';

/** Close codes carried in CLOSE frames. */
export const CloseCode = {
  NO_ERROR: 0,
  INTERNAL: 1,
  PROTOCOL_VIOLATION: 2,
  FLOW_CONTROL: 3,
  APPLICATION: 16,
} as const;

/** Reasons a connection drops a datagram. */
export type EngineDropReason =
  | 'bad_auth'
  | 'malformed'
  | 'replay'
  | 'version'
  | 'duplicate_handshake'
  | 'closed'
  | 'amplification'
  | 'flow_control'
  | 'not_ready';

export interface EngineInit {
  role: 'client' | 'server';
  localCid: Buffer;
  /** This connection's keys: the sending secret's (client), the one that matched (server). */
  clusterKeys: ClusterKeys;
  /** The socket's current secrets: a stateless reset made under any of them is believed. */
  keyring?: ClusterKeyring;
  aead: AeadAlgorithm;
  aeadBackend: AeadBackend;
  /** Our transport parameters (max datagram size, receive window, idle timeout, ack delay). */
  params: TransportParams;
  congestion: CongestionAlgorithm;
  /** Unacknowledged bytes held before the writer is told to wait. */
  sendBufferBytes: number;
  /** PING after this long without sending (0 = off). */
  keepAliveMs: number;
  /** Max packets built per flush. */
  maxPacketsPerFlush?: number;
  /** Source of randomness (nonces); injectable for deterministic tests. */
  random?: (n: number) => Buffer;
  /** Where this connection's drops are recorded (the socket's ledger). @default none */
  drops?: DropLedger;
}

export interface EngineEvents {
  /** Client: handshake done. Server: the client proved it has the keys (address validated). */
  onEstablished(): void;
  /** Stream bytes (or the end of the stream) are ready for read(). */
  onReadable(): void;
  /** The send buffer dropped below its limit. */
  onWritable(): void;
  /** The connection is over for the application (err null = clean close). */
  onClosed(err: Error | null): void;
}

/** Sends one datagram made of the concatenation of `parts`. */
export type DatagramOut = (parts: Buffer[], bytes: number) => void;

export type EngineState = 'handshake' | 'established' | 'closing' | 'closed';

/** Per-connection counters (stats()). */
export interface ConnectionStats {
  state: EngineState;
  srttMs: number;
  rttVarMs: number;
  minRttMs: number;
  latestRttMs: number;
  cwnd: number;
  bytesInFlight: number;
  pacingRateBytesPerMs: number;
  congestion: Record<string, number | string>;
  packetsSent: number;
  packetsReceived: number;
  bytesSent: number;
  bytesReceived: number;
  streamBytesSent: number;
  streamBytesReceived: number;
  retransmissions: number;
  retransmittedBytes: number;
  spuriousRetransmissions: number;
  lostPackets: number;
  ptoCount: number;
  /** Times every packet over 3 PTOs was lost (RFC 9002 §7.6); the window collapsed. */
  persistentCongestionEvents: number;
  acksSent: number;
  sendBufferBytes: number;
  receiveBufferBytes: number;
  peerMaxData: number;
  drops: Record<string, number>;
}
