/**
 * Peers: who the other nodes are and where they can be reached (static config, DNS,
 * the Peers API). Knows nothing of topics or gRPC.
 */
export { PeerDirectory, validatePeerId, MAX_PEERS } from './directory';
export type { PeerEntry, PeerSource, DirectoryEvents } from './directory';
export { DnsResolver } from './dns-resolver';
export type { DnsResolverInit } from './dns-resolver';
