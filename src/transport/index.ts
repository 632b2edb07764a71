/**
 * Transport: reliable, ordered, authenticated byte streams over UDP.
 *
 * @example
 * const sock = await RudpSocket.bind({ host: '127.0.0.1', port: 0, secret });
 * sock.on('connection', (conn) => conn.pipe(conn)); // echo
 * const conn = await sock.connect({ host: '127.0.0.1', port: 7401 }, { timeoutMs: 2000 });
 * conn.write(Buffer.from('hello'));
 *
 * @packageDocumentation
 */
export { RudpSocket } from './rudp-socket';
export type {
  RudpSocketInit,
  ConnectOptions,
  SocketStats,
  SocketDropReason,
  TransportLogger,
} from './rudp-socket';
export { RudpConnection } from './rudp-connection';
export type { CodedError } from './rudp-connection';
export { RudpEngine, CloseCode } from './engine';
export type {
  ConnectionStats,
  EngineInit,
  EngineEvents,
  EngineState,
  EngineDropReason,
} from './engine';
export type { DatagramSocket, DriverStats, RemoteInfo } from './datagram-socket';
export { UdpDriver } from './udp-driver';
export { BatchUdpDriver } from './batch-udp-driver';
export type { UdpBatchAddon } from './batch-udp-driver';
export { UDP_DRIVER_PREFERENCES, bindUdp, selectUdpDriver } from './udp-binding';
export type { UdpDriverKind, UdpDriverPreference } from './udp-binding';
export { VirtualNetwork, VirtualSocket, createLossyPair, seededRandom } from './virtual-network';
export type { LinkConditions, VirtualNetworkInit, NetworkDropReason } from './virtual-network';
export { createCongestionController, Bbr, Cubic, NewReno } from './congestion';
export type { CongestionAlgorithm, CongestionController } from './congestion';
export { packetize } from './packetizer';
export type { PacketizerContext, PacketPlan } from './packetizer';
export { ClusterKeys } from './packet-protection';
export { DEVELOPMENT_SECRET } from './constants';
export { AEAD_BACKEND_PREFERENCES } from './packet-protection';
export type { AeadAlgorithm, AeadBackend, AeadBackendPreference } from './packet-protection';
