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
 * An entry may name a verified client certificate (mTLS) instead of a token
 * (auth-cert.ts): a call without a token is matched against those entries. A presented
 * token always decides, even when the certificate also matches an entry.
 *
 * File format (YAML or JSON):
 *
 *   tokens:
 *     - name: orders-service          # shown in errors, logs and metrics
 *       token: "at least 16 chars"    # or tokenSha256: <64 hex digits>
 *       # or certificate: { spiffe: "spiffe://cluster.local/ns/prod/sa/orders" }
 *       #                 (or cn:, dns:, uri:; needs tlsClientCaFile)
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
import { InvalidArgumentError, quote, systemClock, UnauthenticatedError } from '../common';
import { validatePattern } from '../node';
import type { Logger } from '../telemetry';
import type { PermissionRules } from './auth-patterns';
import { CompiledRules } from './auth-patterns';
import { DEFAULT_RELOAD_INTERVAL_MS, FileSetWatcher } from './tls';
import type { CertificateMatcher, PeerIdentity } from './auth-cert';
import {
  certificateMatches,
  certificateSchema,
  describeMatcher,
  describePresented,
  toMatcher,
} from './auth-cert';

/** Shortest token accepted in a tokens file (guessing must be hopeless). */
export const MIN_TOKEN_LENGTH = 16;

/** How a principal was recognised. */
export type PrincipalKind = 'anonymous' | 'token' | 'certificate';

/**
 * Who is calling: a tokens-file entry's identity and rights (matched by bearer token or
 * client certificate), or the anonymous caller when auth is off.
 */
export interface Principal {
  /** Entry name; '' when auth is off. */
  readonly name: string;
  readonly kind: PrincipalKind;
  /**
   * Token digest or certificate matcher, and rights, as loaded; a reload that removes or
   * changes the entry yields a different fingerprint, so streams opened under the old one
   * can be ended.
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
  kind: 'anonymous',
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
    certificate: certificateSchema.optional(),
    admin: z.boolean().optional(),
    expires: z.union([z.string(), z.date()]).optional(),
    publish: rulesSchema,
    subscribe: rulesSchema,
  })
  .strict()
  .refine(t => [t.token, t.tokenSha256, t.certificate].filter(v => v !== undefined).length === 1, {
    message:
      'give exactly one of token and tokenSha256 (a bearer token) or certificate (a client certificate)',
  });

const fileSchema = z.object({ tokens: z.array(tokenSchema) }).strict();

export interface TokenEntry {
  principal: Principal;
  /** SHA-256 of the token; undefined for a certificate entry. */
  digest?: Buffer;
  /** What a client certificate must present; undefined for a token entry. */
  certificate?: CertificateMatcher;
  /** Wall-clock ms after which the token is refused; Infinity when it never expires. */
  expiresAtMs: number;
}

function toRules(r: { allow?: string[]; deny?: string[] } | undefined): PermissionRules {
  return { allow: r?.allow ?? ['>'], deny: r?.deny ?? [] };
}

function sha256(s: string | Buffer): Buffer {
  return createHash('sha256').update(s).digest();
}

export interface ParseTokensOptions {
  /**
   * Whether the node verifies client certificates (tlsClientCaFile set). When false, a
   * `certificate:` entry is an error: nothing could ever match it, and an unverified
   * certificate must never grant rights. @default true
   */
  clientCertificatesVerified?: boolean;
}

/** ' (entry "orders")' when entry `index` has a readable name, else ''. */
function entryName(data: unknown, index: number): string {
  const entry = (data as { tokens?: unknown[] } | null)?.tokens?.[index] as
    { name?: unknown } | undefined;
  return typeof entry?.name === 'string' ? ` (entry ${quote(entry.name, 128)})` : '';
}

/** Parses and validates a tokens file's text. Throws InvalidArgumentError naming the entry. */
export function parseTokensFile(
  text: string,
  what = 'tokens file',
  options: ParseTokensOptions = {}
): TokenEntry[] {
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
    const [top, index] = issue.path;
    const where =
      (issue.path.join('.') || '(top)') +
      (top === 'tokens' && typeof index === 'number' ? entryName(data, index) : '');
    throw new InvalidArgumentError(`${what}: ${where}: ${issue.message}`);
  }
  const names = new Set<string>();
  const digests = new Set<string>();
  const matchers = new Set<string>();
  const verified = options.clientCertificatesVerified ?? true;
  return parsed.data.tokens.map((t, i) => {
    if (names.has(t.name))
      throw new InvalidArgumentError(`${what}: tokens.${i}.name "${t.name}" is used twice`);
    names.add(t.name);
    let digest: Buffer | undefined;
    let certificate: CertificateMatcher | undefined;
    let key: string;
    if (t.certificate !== undefined) {
      certificate = toMatcher(t.certificate);
      if (!verified) {
        throw new InvalidArgumentError(
          `${what}: tokens.${i}.certificate (entry ${quote(t.name)}): this node does not verify client certificates, so no certificate may grant rights: set tlsClientCaFile (--tls-client-ca-file, MESHWIRE_TLS_CLIENT_CA_FILE) to the CA that signs them, or give the entry a token`
        );
      }
      key = `cert:${describeMatcher(certificate)}`;
      if (matchers.has(key))
        throw new InvalidArgumentError(
          `${what}: tokens.${i}.certificate (entry ${quote(t.name)}) repeats another entry's ${describeMatcher(certificate)}`
        );
      matchers.add(key);
    } else {
      digest =
        t.token !== undefined ? sha256(t.token) : Buffer.from(t.tokenSha256 as string, 'hex');
      key = digest.toString('hex');
      if (digests.has(key))
        throw new InvalidArgumentError(
          `${what}: tokens.${i} ("${t.name}") repeats another entry's token`
        );
      digests.add(key);
    }
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
        kind: certificate ? 'certificate' : 'token',
        fingerprint: `${key}|${t.admin === true}|${JSON.stringify([publish, subscribe])}`,
        admin: t.admin ?? false,
        publish: new CompiledRules(publish),
        subscribe: new CompiledRules(subscribe),
      },
      digest,
      certificate,
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

/** "token \"orders\"" or "certificate identity \"orders\"", for messages. */
export function principalLabel(p: Principal): string {
  return `${p.kind === 'certificate' ? 'certificate identity' : 'token'} ${quote(p.name)}`;
}

/** The current set of tokens; `authenticate` is safe to call on every gRPC call. */
export class TokenStore {
  private entries: TokenEntry[];
  /** Token entries only (compared on every call with a token). */
  private tokenEntries: TokenEntry[];
  /** Certificate entries only, in file order. */
  private certificateEntries: TokenEntry[];
  private readonly now: () => number;

  constructor(entries: TokenEntry[], init: TokenStoreInit = {}) {
    this.entries = entries;
    this.tokenEntries = entries.filter(e => e.digest);
    this.certificateEntries = entries.filter(e => e.certificate);
    this.now = init.now ?? Date.now;
  }

  get size(): number {
    return this.entries.length;
  }

  /** Entries that name a client certificate (0: certificates are never looked at). */
  get certificateEntryCount(): number {
    return this.certificateEntries.length;
  }

  replace(entries: TokenEntry[]): void {
    this.entries = entries;
    this.tokenEntries = entries.filter(e => e.digest);
    this.certificateEntries = entries.filter(e => e.certificate);
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
    for (const e of this.tokenEntries) {
      if (timingSafeEqual(e.digest as Buffer, digest) && found === undefined) found = e;
    }
    if (!found) throw new UnauthenticatedError('unknown token');
    if (this.now() >= found.expiresAtMs) {
      throw new UnauthenticatedError(`token "${found.principal.name}" has expired`, {
        tokenName: found.principal.name,
      });
    }
    return found.principal;
  }

  /**
   * The principal of a call without a token: the first certificate entry (file order)
   * that the verified client certificate matches. Throws UnauthenticatedError when there
   * is no certificate, no entry matches (the message says what the certificate presented
   * and how to add an entry) or the entry has expired.
   */
  authenticateCertificate(peer: PeerIdentity | undefined): Principal {
    if (!peer) return this.authenticate(undefined);
    const found = this.certificateEntries.find(e =>
      certificateMatches(e.certificate as CertificateMatcher, peer)
    );
    if (!found) {
      throw new UnauthenticatedError(
        `no token, and the client certificate (${describePresented(peer)}) matches no certificate entry of the tokens file: send "authorization: Bearer <token>", or add an entry such as "- name: <name>" with "certificate: { spiffe: <URI SAN> }" (or cn:, dns:, uri:)`
      );
    }
    if (this.now() >= found.expiresAtMs) {
      throw new UnauthenticatedError(
        `certificate identity "${found.principal.name}" has expired (${describeMatcher(found.certificate as CertificateMatcher)})`,
        { tokenName: found.principal.name }
      );
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
  onPoll: () => void = () => undefined,
  options: ParseTokensOptions = {}
): TokenFileHandle {
  const store = new TokenStore(
    parseTokensFile(readFileSync(path, 'utf8'), `tokens file ${path}`, options),
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
        store.replace(parseTokensFile(content.toString('utf8'), `tokens file ${path}`, options));
        state.reloads++;
        log.info(
          {
            tokens_file: path,
            tokens: store.size,
            certificate_entries: store.certificateEntryCount,
          },
          'tokens file reloaded'
        );
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
