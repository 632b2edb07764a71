/**
 * What each peer has subscribers for (its advertised patterns and queue groups), and
 * the routing plan for a message sent with no target: every peer with a matching plain
 * subscription gets it, and each matching queue group gets it once in the whole
 * cluster — here if a local member exists, else at one peer chosen round robin.
 */
import type { Interest } from '../common';
import type { DeliveryScope, InterestUpdate } from '../dispatch';
import { TopicTrie, validatePattern } from './topics';

interface PeerInterest {
  keys: Map<string, Interest>;
  trie: TopicTrie<Interest>;
}

/** Patterns one peer may advertise at most (a bound on what a peer can make us hold). */
export const MAX_INTERESTS_PER_PEER = 100_000;

const keyOf = (i: Interest): string => `${i.queueGroup}\u0000${i.pattern}`;

export class InterestTable {
  private readonly peers = new Map<string, PeerInterest>();
  private cursor = 0;

  /** Applies a snapshot or delta from a peer; invalid patterns are skipped. */
  apply(peerId: string, update: InterestUpdate): void {
    let p = this.peers.get(peerId);
    if (update.snapshot || !p) {
      p = { keys: new Map(), trie: new TopicTrie<Interest>() };
      this.peers.set(peerId, p);
    }
    for (const r of update.remove) {
      const k = keyOf(r);
      const existing = p.keys.get(k);
      if (existing) {
        p.keys.delete(k);
        p.trie.remove(existing.pattern, existing);
      }
    }
    for (const a of update.add) {
      const k = keyOf(a);
      if (p.keys.has(k) || p.keys.size >= MAX_INTERESTS_PER_PEER) continue;
      try {
        validatePattern(a.pattern);
      } catch {
        continue;
      }
      const interest: Interest = { pattern: a.pattern, queueGroup: a.queueGroup };
      p.keys.set(k, interest);
      p.trie.insert(a.pattern, interest);
    }
    if (p.keys.size === 0) this.peers.delete(peerId);
  }

  forget(peerId: string): void {
    this.peers.delete(peerId);
  }

  /** Peers with at least one advertised pattern. */
  peerIds(): string[] {
    return [...this.peers.keys()];
  }

  /** A peer's advertised interests (for ListPeers and tests). */
  of(peerId: string): Interest[] {
    return [...(this.peers.get(peerId)?.keys.values() ?? [])];
  }

  /**
   * Which peers get a message on `topic`, and for which of their subscribers.
   * `hasLocalGroupMember(g)` says whether queue group g has a member here (preferred).
   */
  plan(
    topic: string,
    hasLocalGroupMember: (group: string) => boolean
  ): Array<{ peerId: string; scope: DeliveryScope }> {
    if (this.peers.size === 0) return [];
    const plans = new Map<string, DeliveryScope>();
    const groupHolders = new Map<string, string[]>();
    for (const [peerId, p] of this.peers) {
      const matches = p.trie.match(topic);
      for (let i = 0; i < matches.length; i++) {
        const m = matches[i];
        if (m.queueGroup === '') {
          let s = plans.get(peerId);
          if (!s) plans.set(peerId, (s = { allGroups: false, plain: true, groups: [] }));
          s.plain = true;
        } else {
          let holders = groupHolders.get(m.queueGroup);
          if (!holders) groupHolders.set(m.queueGroup, (holders = []));
          if (!holders.includes(peerId)) holders.push(peerId);
        }
      }
    }
    for (const [group, holders] of groupHolders) {
      if (hasLocalGroupMember(group)) continue;
      const peerId = holders[this.cursor++ % holders.length];
      let s = plans.get(peerId);
      if (!s) plans.set(peerId, (s = { allGroups: false, plain: false, groups: [] }));
      s.groups.push(group);
    }
    return [...plans].map(([peerId, scope]) => ({ peerId, scope }));
  }

  /** One peer with any subscriber matching `topic` (round robin), for a Request. */
  pickResponder(topic: string): string | undefined {
    const candidates: string[] = [];
    for (const [peerId, p] of this.peers)
      if (p.trie.match(topic).length > 0) candidates.push(peerId);
    if (candidates.length === 0) return undefined;
    return candidates[this.cursor++ % candidates.length];
  }
}
