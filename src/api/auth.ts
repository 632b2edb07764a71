/**
 * Client authentication with bearer tokens (`authorization: Bearer <token>` metadata)
 * from a tokens file, each token with a name, an optional admin flag, an optional expiry
 * and publish/subscribe permissions (auth-patterns.ts). The file is reloaded when it
 * changes: a removed token stops working on the next call.
 *
 * Tokens are kept only as SHA-256 digests; a presented token is hashed and compared with
 * every digest by crypto.timingSafeEqual (no early exit), so the time taken does not tell
 * which bytes were right. Tokens are never logged: the authorization header is removed
 * from the call's metadata before any handler sees it.
 *
 * File format (YAML or JSON):
 *
 *   tokens:
 *     - name: orders-service          # shown in errors, logs and metrics
 *       token: "at least 16 chars"    # or tokenSha256: <64 hex digits>
 *       admin: false                  # the Peers admin service needs true
 *       expires: 2027-01-01T00:00:00Z # optional
 *       publish:   { allow: ["orders.>"], deny: ["orders.internal.>"] }
 *       subscribe: { allow: ["orders.*.status"] }
 *
 * An omitted `allow` allows everything (`>`), an omitted `deny` denies nothing, as in
 * NATS; `allow: []` allows nothing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { Clock } from '../common';
import { InvalidArgumentError, systemClock, UnauthenticatedError } from '../common';
import { validatePattern } from '../node';
import type { Logger } from '../telemetry';
import type { PermissionRules } from './auth-patterns';
import { CompiledRules } from './auth-patterns';
import { DEFAULT_RELOAD_INTERVAL_MS, FileSetWatcher } from './tls';

/** Shortest token accepted in a tokens file (guessing must be hopeless). */
export const MIN_TOKEN_LENGTH = 16;

/** Who is calling: a token's identity and rights, or the anonymous caller when auth is off. */
export interface Principal {
  /** Token name; '' when auth is off. */
  readonly name: string;
  /**
   * Token digest and rights as loaded; a reload that removes or changes the token yields
   * a different fingerprint, so streams opened under the old one can be ended.
   */
  readonly fingerprint?: string;
  readonly admin: boolean;
  readonly publish: CompiledRules;
  readonly subscribe: CompiledRules;
}

const ALLOW_ALL: PermissionRules = { allow: ['>'], deny: [] };

/** The caller when auth is off: may do everything. */
export const ANONYMOUS: Principal = {
  name: '',
  admin: true,
  publish: new CompiledRules(ALLOW_ALL),
  subscribe: new CompiledRules(ALLOW_ALL),
};

const patternList = z.array(
  z.string().superRefine((p, ctx) => {
    try {
      validatePattern(p);
    } catch (err) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: (err as Error).message });
    }
  })
);

const rulesSchema = z
  .object({ allow: patternList.optional(), deny: patternList.optional() })
  .strict()
  .optional();

const tokenSchema = z
  .object({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$/, 'names use A-Z a-z 0-9 _ . @ - (1 to 128)'),
    token: z
      .string()
      .min(MIN_TOKEN_LENGTH, `tokens need at least ${MIN_TOKEN_LENGTH} characters`)
      .optional(),
    tokenSha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'tokenSha256 is the hex SHA-256 of the token (64 digits)')
      .optional(),
    admin: z.boolean().optional(),
    expires: z.union([z.string(), z.date()]).optional(),
    publish: rulesSchema,
    subscribe: rulesSchema,
  })
  .strict()
  .refine(t => (t.token === undefined) !== (t.tokenSha256 === undefined), {
    message: 'give exactly one of token and tokenSha256',
  });

const fileSchema = z.object({ tokens: z.array(tokenSchema) }).strict();

interface TokenEntry {
  principal: Principal;
  digest: Buffer;
  /** Wall-clock ms after which the token is refused; Infinity when it never expires. */
  expiresAtMs: number;
}

function toRules(r: { allow?: string[]; deny?: string[] } | undefined): PermissionRules {
  return { allow: r?.allow ?? ['>'], deny: r?.deny ?? [] };
}

function sha256(s: string | Buffer): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Parses and validates a tokens file's text. Throws InvalidArgumentError naming the entry. */
export function parseTokensFile(text: string, what = 'tokens file'): TokenEntry[] {
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    throw new InvalidArgumentError(
      `${what} is not valid YAML/JSON: ${(err as Error).message.split('\n')[0]}`
    );
  }
  const parsed = fileSchema.safeParse(data ?? { tokens: [] });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidArgumentError(`${what}: ${issue.path.join('.') || '(top)'}: ${issue.message}`);
  }
  const names = new Set<string>();
  const digests = new Set<string>();
  return parsed.data.tokens.map((t, i) => {
    if (names.has(t.name))
      throw new InvalidArgumentError(`${what}: tokens.${i}.name "${t.name}" is used twice`);
    names.add(t.name);
    const digest =
      t.token !== undefined ? sha256(t.token) : Buffer.from(t.tokenSha256 as string, 'hex');
    const hex = digest.toString('hex');
    if (digests.has(hex))
      throw new InvalidArgumentError(
        `${what}: tokens.${i} ("${t.name}") repeats another entry's token`
      );
    digests.add(hex);
    let expiresAtMs = Infinity;
    if (t.expires !== undefined) {
      expiresAtMs = new Date(t.expires).getTime();
      if (!Number.isFinite(expiresAtMs)) {
        throw new InvalidArgumentError(
          `${what}: tokens.${i}.expires is not a date (use ISO 8601, e.g. 2027-01-01T00:00:00Z)`
        );
      }
    }
    const publish = toRules(t.publish);
    const subscribe = toRules(t.subscribe);
    return {
      principal: {
        name: t.name,
        fingerprint: `${hex}|${t.admin === true}|${JSON.stringify([publish, subscribe])}`,
        admin: t.admin ?? false,
        publish: new CompiledRules(publish),
        subscribe: new CompiledRules(subscribe),
      },
      digest,
      expiresAtMs,
    };
  });
}

/** Extracts the token from `authorization: Bearer <token>`; undefined when absent. */
export function bearerToken(values: readonly (string | Buffer)[]): string | undefined {
  const v = values[0];
  if (v === undefined) return undefined;
  const s = typeof v === 'string' ? v : v.toString('utf8');
  const m = /^Bearer\s+(\S+)\s*$/i.exec(s);
  return m ? m[1] : '';
}

export interface TokenStoreInit {
  /** Wall-clock milliseconds, for token expiry. @default Date.now */
  now?: () => number;
}

/** The current set of tokens; `authenticate` is safe to call on every gRPC call. */
export class TokenStore {
  private entries: TokenEntry[];
  private readonly now: () => number;

  constructor(entries: TokenEntry[], init: TokenStoreInit = {}) {
    this.entries = entries;
    this.now = init.now ?? Date.now;
  }

  get size(): number {
    return this.entries.length;
  }

  replace(entries: TokenEntry[]): void {
    this.entries = entries;
  }

  /** False once the principal's token was removed, changed (rights or admin) or expired. */
  stillValid(p: Principal): boolean {
    const now = this.now();
    return this.entries.some(e => e.principal.fingerprint === p.fingerprint && now < e.expiresAtMs);
  }

  /**
   * The principal of a presented token. Throws UnauthenticatedError for a missing,
   * unknown or expired token (the message never contains the token).
   */
  authenticate(token: string | undefined): Principal {
    if (token === undefined) {
      throw new UnauthenticatedError(
        'no token: send metadata "authorization: Bearer <token>" (auth is on for this node)'
      );
    }
    if (token === '') {
      throw new UnauthenticatedError('malformed authorization metadata: expected "Bearer <token>"');
    }
    const digest = sha256(token);
    let found: TokenEntry | undefined;
    // Compare with every entry, without stopping at the first match.
    for (const e of this.entries) {
      if (timingSafeEqual(e.digest, digest) && found === undefined) found = e;
    }
    if (!found) throw new UnauthenticatedError('unknown token');
    if (this.now() >= found.expiresAtMs) {
      throw new UnauthenticatedError(`token "${found.principal.name}" has expired`, {
        tokenName: found.principal.name,
      });
    }
    return found.principal;
  }
}

export interface TokenFileHandle {
  store: TokenStore;
  readonly reloads: number;
  readonly failures: number;
  stop(): void;
}

/**
 * Loads the tokens file (throws InvalidArgumentError when invalid: the node must not
 * start) and reloads it when it changes; an invalid new version is refused with a
 * warning and the previous tokens stay in force.
 */
export function watchTokensFile(
  path: string,
  log: Logger,
  intervalMs = DEFAULT_RELOAD_INTERVAL_MS,
  clock: Clock = systemClock,
  init: TokenStoreInit = {},
  /** Called after every poll (changed or not): the guard ends streams of dead tokens. */
  onPoll: () => void = () => undefined
): TokenFileHandle {
  const store = new TokenStore(
    parseTokensFile(readFileSync(path, 'utf8'), `tokens file ${path}`),
    init
  );
  const state = { reloads: 0, failures: 0 };
  let first = true;
  const watcher = new FileSetWatcher(
    [path],
    ([content]) => {
      if (first) {
        first = false;
        return;
      }
      try {
        store.replace(parseTokensFile(content.toString('utf8'), `tokens file ${path}`));
        state.reloads++;
        log.info({ tokens_file: path, tokens: store.size }, 'tokens file reloaded');
      } catch (err) {
        state.failures++;
        log.warn(
          { tokens_file: path, err: (err as Error).message },
          'tokens file changed but is invalid; keeping the previous tokens'
        );
      }
    },
    intervalMs,
    clock,
    err =>
      log.warn(
        { tokens_file: path, err: err.message },
        'cannot read the tokens file; keeping the previous tokens'
      ),
    onPoll
  );
  watcher.start();
  return {
    store,
    get reloads() {
      return state.reloads;
    },
    get failures() {
      return state.failures;
    },
    stop: () => watcher.stop(),
  };
}
