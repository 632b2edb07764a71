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
export { RudpEngine } from './engine/engine';
export { CloseCode } from './engine/types';
export type {
  ConnectionStats,
  EngineInit,
  EngineEvents,
  EngineState,
  EngineDropReason,
} from './engine/types';
export type { DatagramSocket, DriverStats, RemoteInfo } from './drivers/datagram-socket';
export { UdpDriver } from './drivers/udp-driver';
export { BatchUdpDriver } from './drivers/batch-udp-driver';
export type { UdpBatchAddon } from './drivers/batch-udp-driver';
export { UDP_DRIVER_PREFERENCES, bindUdp, selectUdpDriver } from './drivers/udp-binding';
export type { UdpDriverKind, UdpDriverPreference } from './drivers/udp-binding';
export {
  VirtualNetwork,
  VirtualSocket,
  createLossyPair,
  seededRandom,
} from './virtual/virtual-network';
export type {
  LinkConditions,
  VirtualNetworkInit,
  NetworkDropReason,
} from './virtual/virtual-network';
export { createCongestionController, Bbr, Cubic, NewReno } from './congestion';
export type { CongestionAlgorithm, CongestionController } from './congestion';
export { packetize } from './engine/packetizer';
export type { PacketizerContext, PacketPlan } from './engine/packetizer';
export {
  ClusterKeyring,
  ClusterKeys,
  MAX_CLUSTER_SECRETS,
  assertClusterSecrets,
} from './crypto/packet-protection';
export { DEVELOPMENT_SECRET } from './constants';
export { AEAD_BACKEND_PREFERENCES } from './crypto/packet-protection';
export type { AeadAlgorithm, AeadBackend, AeadBackendPreference } from './crypto/packet-protection';
