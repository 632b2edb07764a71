/**
 * The peer directory as the Peers API sees it: ListPeers rows, PutPeer and DeletePeer
 * with their validation. Pure over the directory and the cluster's per-peer status.
 */
import { isIP } from 'node:net';
import type { HostPort } from '../common';
import { InvalidArgumentError, formatHostPort, parseHostPort, quote } from '../common';
import type { Cluster } from '../dispatch';
import type { PeerDirectory, PeerEntry } from '../peers';
import { validatePeerId } from '../peers';

/** A peer as ListPeers shows it. */
export interface PeerStatus {
  id: string;
  addresses: string[];
  source: string;
  state: string;
  srttUs: number;
  inFlight: number;
  queueDepth: number;
  lastError: string;
  lastSeenUnixMs: number;
}

/** A directory entry with its link's status (idle or unresolved when it has no link). */
export function peerStatusOf(e: PeerEntry, cluster: Cluster | undefined): PeerStatus {
  const c = cluster?.peerStatus(e.id);
  return {
    id: e.id,
    addresses: e.addresses.map(formatHostPort),
    source: e.source,
    state: c?.state ?? (e.addresses.length > 0 ? 'idle' : 'unresolved'),
    srttUs: c?.srttUs ?? 0,
    inFlight: c?.inFlight ?? 0,
    queueDepth: c?.queueDepth ?? 0,
    lastError: c?.lastError ?? '',
    lastSeenUnixMs: c?.lastSeenUnixMs ?? 0,
  };
}

/** The id of the peer at UDP address `addr` ("host:port"), else the address itself. */
export function peerIdAt(directory: PeerDirectory, addr: string): string {
  for (const e of directory.list()) {
    if (e.addresses.some(a => formatHostPort(a) === addr)) return e.id;
  }
  return addr;
}

/**
 * Inserts or replaces a peer (Peers.PutPeer): IP addresses, or one DNS name that the
 * resolver fills in. Throws InvalidArgumentError for a bad id or address, or the node's own id.
 */
export function putPeer(
  directory: PeerDirectory,
  selfId: string,
  id: string,
  addresses: string[]
): PeerEntry {
  validatePeerId(id);
  if (id === selfId) {
    throw new InvalidArgumentError(`peer id ${quote(id)} is this node's own id`);
  }
  if (!addresses || addresses.length === 0) {
    throw new InvalidArgumentError(
      `peer ${quote(id)}: addresses is empty: give at least one "host:port"`
    );
  }
  const parsed: HostPort[] = addresses.map(a => parseHostPort(a, `peer ${quote(id)} address`));
  const names = parsed.filter(a => isIP(a.host) === 0);
  if (names.length > 0) {
    if (parsed.length > 1) {
      throw new InvalidArgumentError(
        `peer ${quote(id)}: give either one DNS name or IP addresses, not both`
      );
    }
    return directory.put(id, [], 'api', { name: names[0].host, port: names[0].port });
  }
  return directory.put(id, parsed, 'api');
}

/** This node's own row in ListPeers (`inFlight`: its work in progress). */
export function selfStatus(id: string, address: string, inFlight: number): PeerStatus {
  return {
    id,
    addresses: [address],
    source: 'self',
    state: 'self',
    srttUs: 0,
    inFlight,
    queueDepth: 0,
    lastError: '',
    lastSeenUnixMs: Date.now(),
  };
}
