/**
 * The links peers opened to us: every accepted connection until it closes, and by peer
 * id once its HELLO is done (a peer may have several during reconnects). The last link
 * of a peer closing tells the cluster the peer is gone.
 */
import type { Duplex } from 'node:stream';
import type { PeerLinkInit } from './peer-link';
import { PeerLink } from './peer-link';
import type { ClusterLogger } from './peer-sender';

export interface InboundLinksInit {
  /** How each accepted link is set up (role aside). */
  link: Omit<PeerLinkInit, 'role' | 'expectedId' | 'onDrop'>;
  log?: ClusterLogger;
  /** The last link of `peerId` closed. */
  onPeerGone(peerId: string): void;
}

export class InboundLinks {
  private readonly init: InboundLinksInit;
  private readonly byPeer = new Map<string, Set<PeerLink>>();
  private readonly all = new Set<PeerLink>();

  constructor(init: InboundLinksInit) {
    this.init = init;
  }

  /** Wraps an accepted connection in an inbound link. */
  accept(duplex: Duplex): PeerLink {
    const link = new PeerLink(duplex, { ...this.init.link, role: 'inbound' });
    this.all.add(link);
    link.on('close', err => {
      if (!link.peerId) {
        this.init.log?.warn(
          { err: err.message },
          'inbound peer connection refused or closed before HELLO'
        );
      }
      this.all.delete(link);
      const set = this.byPeer.get(link.peerId);
      if (set?.delete(link) && set.size === 0) {
        this.byPeer.delete(link.peerId);
        this.init.onPeerGone(link.peerId);
      }
    });
    return link;
  }

  /** `link` said HELLO as `peerId`. */
  identified(link: PeerLink, peerId: string): void {
    let set = this.byPeer.get(peerId);
    if (!set) this.byPeer.set(peerId, (set = new Set()));
    set.add(link);
  }

  /** When anything last arrived from `peerId` on an inbound link (Date.now, 0 if never). */
  lastSeenUnixMs(peerId: string): number {
    let last = 0;
    for (const l of this.byPeer.get(peerId) ?? []) last = Math.max(last, l.lastSeenUnixMs);
    return last;
  }

  /** Every live inbound link. */
  links(): PeerLink[] {
    return [...this.all];
  }

  closeAll(): void {
    for (const l of [...this.all]) l.close();
  }
}
