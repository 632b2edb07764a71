/**
 * The local router: which subscriptions of this node receive a message. Plain
 * subscribers each get every matching message; a queue group gets each message once
 * (round robin, preferring members with buffer room); a request goes to exactly one
 * matching subscriber. Pure bookkeeping over the topic trie, no I/O.
 */
import { EventEmitter } from 'node:events';
import type { Interest, Message } from '../common';
import { TopicTrie, validatePattern } from './topics';
import type { SubscriptionInit } from './subscription';
import { Subscription } from './subscription';

export interface RouterEvents {
  /** Emitted when the set of (pattern, queue group) pairs with subscribers changes. */
  interest: [added: Interest[], removed: Interest[]];
}

export class Router extends EventEmitter<RouterEvents> {
  private readonly trie = new TopicTrie<Subscription>();
  private readonly subs = new Map<string, Subscription>();
  /** Reference counts of (pattern, group) pairs, keyed "group\u0000pattern". */
  private readonly interestRefs = new Map<string, number>();
  private readonly roundRobin = new Map<string, number>();
  private requestCursor = 0;
  private nextId = 1;

  /** Number of open subscriptions. */
  get subscriptionCount(): number {
    return this.subs.size;
  }

  subscriptions(): IterableIterator<Subscription> {
    return this.subs.values();
  }

  /** Creates a subscription (patterns are validated; throws InvalidArgumentError). */
  subscribe(init: SubscriptionInit): Subscription {
    for (const p of init.patterns) validatePattern(p);
    const sub = new Subscription(`s${this.nextId++}`, init);
    const patterns = [...new Set(init.patterns)];
    for (const p of patterns) this.trie.insert(p, sub);
    this.subs.set(sub.id, sub);
    const added: Interest[] = [];
    for (const p of patterns) {
      const key = `${sub.queueGroup}\u0000${p}`;
      const n = this.interestRefs.get(key) ?? 0;
      this.interestRefs.set(key, n + 1);
      if (n === 0) added.push({ pattern: p, queueGroup: sub.queueGroup });
    }
    sub.onClose(() => this.remove(sub, patterns));
    if (added.length > 0) this.emit('interest', added, []);
    return sub;
  }

  private remove(sub: Subscription, patterns: string[]): void {
    if (!this.subs.delete(sub.id)) return;
    const removed: Interest[] = [];
    for (const p of patterns) {
      this.trie.remove(p, sub);
      const key = `${sub.queueGroup}\u0000${p}`;
      const n = (this.interestRefs.get(key) ?? 1) - 1;
      if (n <= 0) {
        this.interestRefs.delete(key);
        removed.push({ pattern: p, queueGroup: sub.queueGroup });
      } else {
        this.interestRefs.set(key, n);
      }
    }
    if (removed.length > 0) this.emit('interest', [], removed);
  }

  /** Every (pattern, queue group) pair this node has subscribers for. */
  interests(): Interest[] {
    return [...this.interestRefs.keys()].map(k => {
      const i = k.indexOf('\u0000');
      return { queueGroup: k.slice(0, i), pattern: k.slice(i + 1) };
    });
  }

  /** True when some local subscription matches `topic`. */
  hasSubscribers(topic: string): boolean {
    return this.trie.match(topic).length > 0;
  }

  /**
   * Hands `message` to every matching plain subscriber and to one member of each
   * matching queue group. `skipGroups` leaves queue groups out (another node already
   * chose a member for them). `replyTo` is the reply token every delivery carries (a
   * RequestMany's), '' for a plain message. Returns how many subscriptions took the message.
   */
  publish(message: Message, sourcePeer: string, skipGroups = false, replyTo = ''): number {
    const matched = this.trie.match(message.topic);
    if (matched.length === 0) return 0;
    let delivered = 0;
    let groups: Map<string, Subscription[]> | undefined;
    for (let i = 0; i < matched.length; i++) {
      const sub = matched[i];
      if (sub.queueGroup === '') {
        if (sub.offer({ message, sourcePeer, replyTo })) delivered++;
      } else if (!skipGroups) {
        groups ??= new Map();
        let members = groups.get(sub.queueGroup);
        if (!members) groups.set(sub.queueGroup, (members = []));
        members.push(sub);
      }
    }
    if (groups) {
      for (const [name, members] of groups) {
        const chosen = this.pickMember(name, members);
        if (chosen.offer({ message, sourcePeer, replyTo })) delivered++;
      }
    }
    return delivered;
  }

  /** True when a queue group `group` has a local member matching `topic`. */
  hasGroupMember(topic: string, group: string): boolean {
    return this.trie.match(topic).some(s => s.queueGroup === group);
  }

  /** Delivers to one member of `group` matching the topic; false when none. */
  publishToGroup(message: Message, sourcePeer: string, group: string, replyTo = ''): boolean {
    const members = this.trie.match(message.topic).filter(s => s.queueGroup === group);
    if (members.length === 0) return false;
    return this.pickMember(group, members).offer({ message, sourcePeer, replyTo });
  }

  /**
   * Hands a request to exactly one matching subscriber (round robin, preferring one
   * with buffer room). Returns false when no subscriber matches.
   */
  deliverRequest(message: Message, sourcePeer: string, replyTo: string): boolean {
    const matched = this.trie.match(message.topic);
    if (matched.length === 0) return false;
    const start = this.requestCursor++ % matched.length;
    let chosen = matched[start];
    for (let i = 0; i < matched.length; i++) {
      const s = matched[(start + i) % matched.length];
      if (s.hasRoom) {
        chosen = s;
        break;
      }
    }
    return chosen.offer({ message, sourcePeer, replyTo });
  }

  /** Closes every subscription (node shutdown). */
  closeAll(err: Error | null = null): void {
    for (const sub of [...this.subs.values()]) sub.close(err);
  }

  private pickMember(group: string, members: Subscription[]): Subscription {
    if (members.length === 1) return members[0];
    const start = (this.roundRobin.get(group) ?? 0) % members.length;
    this.roundRobin.set(group, start + 1);
    for (let i = 0; i < members.length; i++) {
      const s = members[(start + i) % members.length];
      if (s.hasRoom) return s;
    }
    return members[start];
  }
}
