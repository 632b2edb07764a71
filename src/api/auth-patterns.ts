/**
 * Topic permissions: allow/deny lists of NATS-style patterns (`*` one token, `>` one or
 * more trailing tokens), deny winning over allow. Pure logic, no I/O.
 *
 * Publishing to a topic is allowed when an allow pattern matches it and no deny pattern
 * does. Subscribing to a pattern is allowed only when EVERY topic the pattern can match
 * is allowed: the allow patterns together must cover the pattern's language (no single
 * allow pattern needs to, e.g. `a.*` and `a.*.>` together cover `a.>`), and no deny
 * pattern may intersect it (otherwise some topic it matches is denied).
 */

/** Allow and deny patterns for one direction (publish or subscribe). */
export interface PermissionRules {
  /** Patterns allowed. Omitted in the tokens file: everything (`>`), as in NATS. */
  allow: readonly string[];
  /** Patterns denied; deny wins over allow. */
  deny: readonly string[];
}

/** Why a topic or pattern was refused: the rule that decided, for the error message. */
export type PermissionVerdict =
  { ok: true } | { ok: false; rule: string; reason: 'denied' | 'not_allowed' };

function split(p: string): string[] {
  return p.split('.');
}

/** True when pattern `p` (tokens) matches topic `t` (tokens, no wildcards). */
export function tokensMatch(p: readonly string[], t: readonly string[]): boolean {
  for (let i = 0; i < p.length; i++) {
    const pt = p[i];
    if (pt === '>') return t.length > i;
    if (i >= t.length) return false;
    if (pt !== '*' && pt !== t[i]) return false;
  }
  return p.length === t.length;
}

/** True when some topic is matched by both patterns. */
export function patternsIntersect(a: readonly string[], b: readonly string[]): boolean {
  for (let i = 0; ; i++) {
    const ai = a[i];
    const bi = b[i];
    if (ai === undefined || bi === undefined) return ai === bi; // both ended together
    if (ai === '>' || bi === '>') return true; // the other has >= 1 token left here
    if (ai !== '*' && bi !== '*' && ai !== bi) return false;
  }
}

/**
 * True when every topic matched by `p` is matched by at least one of `allows`.
 *
 * Recursion on the first token of `p`. A literal keeps the allows whose first token is
 * that literal or `*`; an allow starting with `>` covers any non-empty rest. For `*`
 * every possible token must be covered: it suffices to try each literal that appears
 * first in some allow, plus one token that appears in none (they all behave alike). For
 * `>` (= one token, then nothing or `>` again) the same split applies; each step shortens
 * every remaining allow, so the depth is bounded by the longest allow.
 */
export function patternCovered(
  p: readonly string[],
  allows: readonly (readonly string[])[]
): boolean {
  const memo = new Map<string, boolean>();
  const rec = (pi: number, as: readonly (readonly string[])[]): boolean => {
    if (as.length === 0) return false;
    const key = `${pi}|${as.map(a => a.join('.')).join(' ')}`;
    const hit = memo.get(key);
    if (hit !== undefined) return hit;
    let result: boolean;
    if (pi === p.length) {
      // p is exhausted: the topic has ended; an allow that ended too matches it.
      result = as.some(a => a.length === 0);
    } else {
      const head = p[pi];
      if (as.some(a => a[0] === '>')) {
        result = true; // p has at least one token left, which `>` covers with all the rest
      } else {
        const advance = (tok: string | null): (readonly string[])[] =>
          as.filter(a => a.length > 0 && (a[0] === '*' || a[0] === tok)).map(a => a.slice(1));
        const candidates = (): (string | null)[] => {
          const lits = new Set<string>();
          for (const a of as) if (a.length > 0 && a[0] !== '*') lits.add(a[0]);
          return [...lits, null]; // null: a token no allow names
        };
        if (head === '>') {
          result = candidates().every(tok => {
            const next = advance(tok);
            // After one token: the topic may end, or go on with one or more tokens.
            return next.some(a => a.length === 0) && recTail(next);
          });
        } else if (head === '*') {
          result = candidates().every(tok => rec(pi + 1, advance(tok)));
        } else {
          result = rec(pi + 1, advance(head));
        }
      }
    }
    memo.set(key, result);
    return result;
  };
  // `>` after the first token: the remaining language is again `>`.
  const recTail = (as: readonly (readonly string[])[]): boolean => {
    const rest = as.filter(a => a.length > 0);
    return restCoversGt(rest);
  };
  const gtMemo = new Map<string, boolean>();
  const restCoversGt = (as: readonly (readonly string[])[]): boolean => {
    if (as.length === 0) return false;
    if (as.some(a => a[0] === '>')) return true;
    const key = as.map(a => a.join('.')).join(' ');
    const hit = gtMemo.get(key);
    if (hit !== undefined) return hit;
    const lits = new Set<string>();
    for (const a of as) if (a[0] !== '*') lits.add(a[0]);
    const result = [...lits, null].every(tok => {
      const next = as.filter(a => a[0] === '*' || a[0] === tok).map(a => a.slice(1));
      return next.some(a => a.length === 0) && restCoversGt(next.filter(a => a.length > 0));
    });
    gtMemo.set(key, result);
    return result;
  };
  return rec(0, allows);
}

/** Parsed rules, split once for the hot path. */
export class CompiledRules {
  private readonly allow: readonly (readonly string[])[];
  private readonly deny: readonly (readonly string[])[];
  private readonly allowAll: boolean;

  constructor(readonly rules: PermissionRules) {
    this.allow = rules.allow.map(split);
    this.deny = rules.deny.map(split);
    this.allowAll = rules.deny.length === 0 && rules.allow.includes('>');
  }

  /** May a message be published to (or a request sent on) this topic? */
  checkTopic(topic: string): PermissionVerdict {
    if (this.allowAll) return { ok: true };
    const t = split(topic);
    for (let i = 0; i < this.deny.length; i++) {
      if (tokensMatch(this.deny[i], t)) {
        return { ok: false, rule: `deny "${this.rules.deny[i]}"`, reason: 'denied' };
      }
    }
    for (const a of this.allow) if (tokensMatch(a, t)) return { ok: true };
    return { ok: false, rule: this.allowText(), reason: 'not_allowed' };
  }

  /** May a subscription use this pattern (every topic it matches allowed)? */
  checkPattern(pattern: string): PermissionVerdict {
    if (this.allowAll) return { ok: true };
    const p = split(pattern);
    for (let i = 0; i < this.deny.length; i++) {
      if (patternsIntersect(this.deny[i], p)) {
        return { ok: false, rule: `deny "${this.rules.deny[i]}"`, reason: 'denied' };
      }
    }
    if (patternCovered(p, this.allow)) return { ok: true };
    return { ok: false, rule: this.allowText(), reason: 'not_allowed' };
  }

  private allowText(): string {
    return this.rules.allow.length === 0
      ? 'allow [] (nothing allowed)'
      : `allow [${this.rules.allow.map(a => `"${a}"`).join(', ')}]`;
  }
}
