/**
 * Topics and subscription patterns (the NATS convention users know): dot-separated
 * tokens of [A-Za-z0-9_-]; in patterns `*` matches exactly one token and `>` (last token
 * only) matches one or more trailing tokens. Pure logic, no I/O.
 */
import { quote } from '../common';
import { InvalidArgumentError } from '../common';

/** Longest topic or pattern accepted, in characters. */
export const MAX_TOPIC_LENGTH = 1024;
/** Most tokens in a topic or pattern. */
export const MAX_TOPIC_TOKENS = 64;

const TOKEN_RE = /^[A-Za-z0-9_-]+$/;

function checkShape(text: string, what: string): string[] {
  if (typeof text !== 'string' || text.length === 0) {
    throw new InvalidArgumentError(
      `${what} is empty: give dot-separated tokens such as "orders.created"`
    );
  }
  if (text.length > MAX_TOPIC_LENGTH) {
    throw new InvalidArgumentError(
      `${what} is ${text.length} characters long; at most ${MAX_TOPIC_LENGTH} are allowed`
    );
  }
  const tokens = text.split('.');
  if (tokens.length > MAX_TOPIC_TOKENS) {
    throw new InvalidArgumentError(
      `${what} ${quote(text)} has ${tokens.length} tokens; at most ${MAX_TOPIC_TOKENS} are allowed`
    );
  }
  return tokens;
}

/** Validates a topic a message is sent to (no wildcards). Returns its tokens. */
export function validateTopic(topic: string): string[] {
  const tokens = checkShape(topic, 'topic');
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t === '*' || t === '>') {
      throw new InvalidArgumentError(
        `topic ${quote(topic)} contains the wildcard ${quote(t)}: wildcards are only allowed in subscriptions`
      );
    }
    if (!TOKEN_RE.test(t)) {
      throw new InvalidArgumentError(
        t.length === 0
          ? `topic ${quote(topic)} has an empty token (leading, trailing or double dot)`
          : `topic ${quote(topic)} has an invalid token ${quote(t)}: tokens use only A-Z a-z 0-9 _ -`
      );
    }
  }
  return tokens;
}

/** Validates a subscription pattern. Returns its tokens. */
export function validatePattern(pattern: string): string[] {
  const tokens = checkShape(pattern, 'subscription pattern');
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t === '*') continue;
    if (t === '>') {
      if (i !== tokens.length - 1) {
        throw new InvalidArgumentError(
          `subscription pattern ${quote(pattern)}: ">" must be the last token`
        );
      }
      continue;
    }
    if (!TOKEN_RE.test(t)) {
      throw new InvalidArgumentError(
        t.length === 0
          ? `subscription pattern ${quote(pattern)} has an empty token (leading, trailing or double dot)`
          : `subscription pattern ${quote(pattern)} has an invalid token ${quote(t)}: tokens use only A-Z a-z 0-9 _ - and the wildcards * and >`
      );
    }
  }
  return tokens;
}

/** True when `pattern` matches `topic`; the reference definition (a plain token walk). */
export function patternMatches(pattern: string, topic: string): boolean {
  const p = pattern.split('.');
  const t = topic.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return t.length > i;
    if (i >= t.length) return false;
    if (p[i] !== '*' && p[i] !== t[i]) return false;
  }
  return p.length === t.length;
}

class TrieNode<T> {
  readonly children = new Map<string, TrieNode<T>>();
  star: TrieNode<T> | undefined;
  /** Values whose pattern ends here. */
  readonly values = new Set<T>();
  /** Values whose pattern ends with `>` here. */
  readonly tail = new Set<T>();

  isEmpty(): boolean {
    return this.children.size === 0 && !this.star && this.values.size === 0 && this.tail.size === 0;
  }
}

/** Size of the match-result cache; hot topics skip the trie walk. */
const MATCH_CACHE_SIZE = 4096;

/**
 * Subscription index: a token trie, so matching costs the topic's depth times the
 * branching on wildcards, not a scan of all subscriptions. Match results are cached per
 * topic until the next insert or remove.
 */
export class TopicTrie<T> {
  private readonly root = new TrieNode<T>();
  private cache = new Map<string, readonly T[]>();
  private count = 0;

  /** Number of (pattern, value) entries. */
  get size(): number {
    return this.count;
  }

  insert(pattern: string, value: T): void {
    const tokens = validatePattern(pattern);
    let node = this.root;
    for (let i = 0; i < tokens.length; i++) {
      const tok = tokens[i];
      if (tok === '>') {
        if (!node.tail.has(value)) this.count++;
        node.tail.add(value);
        this.cache.clear();
        return;
      }
      let next: TrieNode<T> | undefined;
      if (tok === '*') {
        next = node.star ??= new TrieNode<T>();
      } else {
        next = node.children.get(tok);
        if (!next) {
          next = new TrieNode<T>();
          node.children.set(tok, next);
        }
      }
      node = next;
    }
    if (!node.values.has(value)) this.count++;
    node.values.add(value);
    this.cache.clear();
  }

  /** Removes one (pattern, value) entry; prunes empty branches. Returns true if found. */
  remove(pattern: string, value: T): boolean {
    const tokens = pattern.split('.');
    const path: Array<[TrieNode<T>, string]> = [];
    let node: TrieNode<T> | undefined = this.root;
    let removed = false;
    for (let i = 0; i < tokens.length && node; i++) {
      const tok = tokens[i];
      if (tok === '>') {
        removed = node.tail.delete(value);
        break;
      }
      path.push([node, tok]);
      node = tok === '*' ? node.star : node.children.get(tok);
      if (node && i === tokens.length - 1) removed = node.values.delete(value);
    }
    if (!removed) return false;
    this.count--;
    this.cache.clear();
    // Prune from the leaf up so the trie does not keep dead branches.
    for (let i = path.length - 1; i >= 0; i--) {
      const [parent, tok] = path[i];
      const child = tok === '*' ? parent.star : parent.children.get(tok);
      if (!child || !child.isEmpty()) break;
      if (tok === '*') parent.star = undefined;
      else parent.children.delete(tok);
    }
    return true;
  }

  /**
   * Values whose pattern matches `topic` (a valid topic), each once. The returned array
   * is shared with the cache: do not modify it.
   */
  match(topic: string): readonly T[] {
    const cached = this.cache.get(topic);
    if (cached) return cached;
    const out = new Set<T>();
    this.walk(this.root, topic.split('.'), 0, out);
    const result = [...out];
    if (this.cache.size >= MATCH_CACHE_SIZE) this.cache = new Map();
    this.cache.set(topic, result);
    return result;
  }

  private walk(node: TrieNode<T>, tokens: string[], i: number, out: Set<T>): void {
    if (i === tokens.length) {
      for (const v of node.values) out.add(v);
      return;
    }
    // `>` here matches the remaining one or more tokens.
    for (const v of node.tail) out.add(v);
    const exact = node.children.get(tokens[i]);
    if (exact) this.walk(exact, tokens, i + 1, out);
    if (node.star) this.walk(node.star, tokens, i + 1, out);
  }
}
