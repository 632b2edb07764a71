/**
 * The peer directory: a watchable map peer id -> addresses, fed by static config, DNS
 * and the Peers API. Senders and resolvers watch it; entries carry where they came from.
 */
import { quote } from '../common';
import { EventEmitter } from 'node:events';
import type { HostPort } from '../common';
import { InvalidArgumentError, NotFoundError } from '../common';

export type PeerSource = 'static' | 'dns' | 'api' | 'learned';

export interface PeerEntry {
  id: string;
  addresses: HostPort[];
  source: PeerSource;
  /** DNS name this entry's addresses are resolved from (kept fresh by DnsResolver). */
  dnsName?: string;
  /** UDP port used with the resolved addresses of `dnsName`. */
  dnsPort?: number;
  updatedAt: number;
}

export interface DirectoryEvents {
  /** An entry was added or its addresses changed. */
  put: [entry: PeerEntry, previous: PeerEntry | undefined];
  delete: [entry: PeerEntry];
}

const PEER_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Throws InvalidArgumentError unless `id` is a valid node id. */
export function validatePeerId(id: string): void {
  if (typeof id !== 'string' || !PEER_ID_RE.test(id)) {
    throw new InvalidArgumentError(
      `peer id ${quote(id)} is not valid: use 1 to 128 characters of A-Z a-z 0-9 _ . - starting with a letter or digit`
    );
  }
}

/** Most peers a directory holds: the API cannot grow it without bound. */
export const MAX_PEERS = 4096;

export class PeerDirectory extends EventEmitter<DirectoryEvents> {
  private readonly entries = new Map<string, PeerEntry>();

  constructor(private readonly now: () => number = Date.now) {
    super();
  }

  get size(): number {
    return this.entries.size;
  }

  get(id: string): PeerEntry | undefined {
    return this.entries.get(id);
  }

  list(): PeerEntry[] {
    return [...this.entries.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Inserts or replaces a peer's addresses. */
  put(
    id: string,
    addresses: HostPort[],
    source: PeerSource,
    dns?: { name: string; port: number }
  ): PeerEntry {
    validatePeerId(id);
    const previous = this.entries.get(id);
    if (!previous && this.entries.size >= MAX_PEERS) {
      throw new InvalidArgumentError(`the peer directory is full (${MAX_PEERS} peers)`);
    }
    const entry: PeerEntry = {
      id,
      addresses: [...addresses],
      source,
      dnsName: dns?.name,
      dnsPort: dns?.port,
      updatedAt: this.now(),
    };
    this.entries.set(id, entry);
    this.emit('put', entry, previous);
    return entry;
  }

  /** Replaces only the addresses of an existing entry (DNS re-resolution). */
  setAddresses(id: string, addresses: HostPort[]): void {
    const previous = this.entries.get(id);
    if (!previous) return;
    const entry: PeerEntry = { ...previous, addresses: [...addresses], updatedAt: this.now() };
    this.entries.set(id, entry);
    this.emit('put', entry, previous);
  }

  /** Removes a peer; NotFoundError for an unknown id. */
  delete(id: string): PeerEntry {
    const entry = this.entries.get(id);
    if (!entry) throw new NotFoundError(`peer ${quote(id)} is not in the directory`);
    this.entries.delete(id);
    this.emit('delete', entry);
    return entry;
  }
}
