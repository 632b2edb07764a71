/**
 * The one gate in front of every gRPC call: a grpc-js server interceptor that
 * authenticates the caller (when auth is on: by bearer token, else by the verified client
 * certificate when the tokens file has certificate entries), enforces the Peers admin right and the
 * per-client stream, subscription and in-flight limits, and releases what a call held
 * when it ends (status sent or cancelled). Handlers then ask the guard for topic
 * permissions, per topic or pattern, with the principal the interceptor attached.
 *
 * grpc.health.v1 is always open (the kubelet's probes carry no token).
 */
import { quote } from '../common';
import type {
  Metadata,
  ServerInterceptingCallInterface,
  ServerInterceptor,
  ServerMethodDefinition,
} from '@grpc/grpc-js';
import { ServerInterceptingCall, status } from '@grpc/grpc-js';
import type { Meter } from '@opentelemetry/api';
import type { MeshwireError } from '../common';
import { DropCounter, InternalError, PermissionDeniedError, UnauthenticatedError } from '../common';
import { validatePattern, validateTopic } from '../node';
import type { Principal, PrincipalKind, TokenStore } from './auth';
import { ANONYMOUS, bearerToken, principalLabel } from './auth';
import type { CertifiedCall } from './auth-cert';
import { PeerIdentityCache } from './auth-cert';
import type { ClientLimits, MemoryBudget } from './limits';
import { grpcCodeOf } from './status';

const HEALTH_PREFIX = '/grpc.health.v1.Health/';
const PEERS_PREFIX = '/messaging.v1.Peers/';
const SUBSCRIBE_PATH = '/messaging.v1.Messenger/Subscribe';
const REQUEST_PATH = '/messaging.v1.Messenger/Request';

export type AuthRejectReason = 'unauthenticated' | 'permission_denied';

/** Every auth refusal reason, for metrics (each exported at zero from the start). */
export const AUTH_REJECT_REASONS: readonly AuthRejectReason[] = [
  'unauthenticated',
  'permission_denied',
];

/** Who a call belongs to, as the interceptor found it. */
export interface CallIdentity {
  principal: Principal;
  /** Key the per-client limits count under: "token:<name>", "cert:<name>" or "addr:<ip>". */
  client: string;
}

/** Client key from a grpc-js peer string ("ipv4:1.2.3.4:5", "ipv6:[::1]:5", "unix:..."). */
export function addressKey(peer: string): string {
  const m = /^(?:ipv4:)?([^[\]]+):\d+$/.exec(peer) ?? /^(?:ipv6:)?\[([^\]]+)\]:\d+$/.exec(peer);
  return `addr:${m ? m[1] : peer}`;
}

/** Where refusals are logged (a pino logger fits). */
export interface RefusalLogger {
  warn(obj: object, msg: string): void;
}

/** Refusal lines logged per window and reason; past it they are counted, not logged. */
export const REFUSAL_LOG_BURST = 20;
export const REFUSAL_LOG_WINDOW_MS = 10_000;

export interface ApiGuardInit {
  /** Tokens when auth is on; undefined: auth off, every caller is ANONYMOUS. */
  tokens?: TokenStore;
  limits: ClientLimits;
  budget: MemoryBudget;
  /** Logs refusals (rate-limited, with the token's name when known, never the token). */
  log?: RefusalLogger;
  /** Milliseconds, for the log rate limit. @default Date.now */
  now?: () => number;
}

/**
 * Rate-limited warning lines, per key: at most `burst` lines every `windowMs`; the first
 * line of a later window says how many were not logged (`not_logged_before`).
 */
export class RateLimitedLog {
  private readonly windows = new Map<
    string,
    { start: number; logged: number; suppressed: number }
  >();

  constructor(
    private readonly log: RefusalLogger,
    private readonly burst = REFUSAL_LOG_BURST,
    private readonly windowMs = REFUSAL_LOG_WINDOW_MS,
    private readonly now: () => number = Date.now
  ) {}

  /** Logs the line unless `key` used up its burst in this window; true if logged. */
  warn(key: string, fields: Record<string, unknown>, msg: string): boolean {
    const now = this.now();
    let w = this.windows.get(key);
    if (!w || now - w.start >= this.windowMs) {
      w = { start: now, logged: 0, suppressed: w?.suppressed ?? 0 };
      this.windows.set(key, w);
    }
    if (w.logged >= this.burst) {
      w.suppressed++;
      return false;
    }
    w.logged++;
    this.log.warn(w.suppressed > 0 ? { ...fields, not_logged_before: w.suppressed } : fields, msg);
    w.suppressed = 0;
    return true;
  }
}

/** Who was refused, for the log line. */
interface RefusalContext {
  method?: string;
  /** grpc-js peer string of the caller ("ipv4:1.2.3.4:5"). */
  peer?: string;
  tokenName?: string;
  /** How the named principal was recognised (token or certificate). */
  principalKind?: PrincipalKind;
}

/** The refusal context naming a principal. */
function named(p: Principal, extra: RefusalContext = {}): RefusalContext {
  return { ...extra, tokenName: p.name, principalKind: p.kind };
}

export class ApiGuard {
  /** Authentication and permission refusals, by reason. */
  readonly rejected = new DropCounter<AuthRejectReason>();
  readonly limits: ClientLimits;
  readonly budget: MemoryBudget;
  private readonly tokens: TokenStore | undefined;
  private readonly identities = new WeakMap<Metadata, CallIdentity>();
  /** Open streaming calls with a token, ended by sweep() when the token goes. */
  private readonly streams = new Set<{ principal: Principal; end(details: string): void }>();
  private readonly refusalLog: RateLimitedLog | undefined;
  /** Client certificates parsed once per connection (only with certificate entries). */
  readonly peerIdentities = new PeerIdentityCache();

  constructor(init: ApiGuardInit) {
    this.tokens = init.tokens;
    this.limits = init.limits;
    this.budget = init.budget;
    this.refusalLog = init.log
      ? new RateLimitedLog(init.log, REFUSAL_LOG_BURST, REFUSAL_LOG_WINDOW_MS, init.now)
      : undefined;
  }

  /**
   * Counts a refusal and logs it: at most REFUSAL_LOG_BURST lines per reason every
   * REFUSAL_LOG_WINDOW_MS; the first line of the next window says how many were not
   * logged. The line names the token (when known), never the token itself: refusal
   * messages are built from token names only.
   */
  private refuse(reason: AuthRejectReason, err: MeshwireError, ctx: RefusalContext): void {
    this.rejected.add(reason);
    if (!this.refusalLog) return;
    const tokenName =
      ctx.tokenName ?? (err instanceof UnauthenticatedError ? err.tokenName : undefined);
    this.refusalLog.warn(
      reason,
      {
        reason,
        ...(ctx.method ? { method: ctx.method } : {}),
        ...(ctx.peer ? { peer: ctx.peer } : {}),
        ...(tokenName !== undefined ? { token_name: tokenName } : {}),
        ...(ctx.principalKind !== undefined ? { principal_kind: ctx.principalKind } : {}),
        error: err.message,
      },
      'call refused'
    );
  }

  get authEnabled(): boolean {
    return this.tokens !== undefined;
  }

  /** The interceptor to pass in the grpc-js Server options (`interceptors`). */
  readonly interceptor: ServerInterceptor = (
    method: ServerMethodDefinition<unknown, unknown>,
    call: ServerInterceptingCallInterface
  ): ServerInterceptingCall => {
    const path = method.path;
    if (path.startsWith(HEALTH_PREFIX)) return new ServerInterceptingCall(call);
    const streaming = method.requestStream || method.responseStream;
    // Auth off and nothing to count (unary Send, Respond, Peers): a bare pass-through
    // layer, without the per-call listener, responder and peer-address parsing below.
    if (!this.tokens && !streaming && path !== REQUEST_PATH)
      return new ServerInterceptingCall(call);
    let release: (() => void) | undefined;
    let tracked: { principal: Principal; end(details: string): void } | undefined;
    const done = (): void => {
      release?.();
      release = undefined;
      if (tracked) this.streams.delete(tracked);
      tracked = undefined;
    };
    return new ServerInterceptingCall(call, {
      start: next =>
        next({
          onReceiveMetadata: (metadata, mdNext) => {
            let identity: CallIdentity;
            try {
              identity = this.identify(metadata, call, path);
              if (path.startsWith(PEERS_PREFIX) && !identity.principal.admin) {
                const err = new PermissionDeniedError(
                  `${principalLabel(identity.principal)} may not use the Peers admin service: it needs "admin: true" in the tokens file`
                );
                this.refuse(
                  'permission_denied',
                  err,
                  named(identity.principal, { method: path, peer: call.getPeer() })
                );
                throw err;
              }
              if (path === SUBSCRIBE_PATH) {
                release = this.limits.acquire(identity.client, 'streams', 'subscriptions');
              } else if (streaming) {
                release = this.limits.acquire(identity.client, 'streams');
              } else if (path === REQUEST_PATH) {
                release = this.limits.acquire(identity.client, 'inFlight');
              }
            } catch (err) {
              call.sendStatus({
                code: grpcCodeOf(err),
                details: (err as MeshwireError).message,
              });
              return;
            }
            this.identities.set(metadata, identity);
            if (streaming && this.tokens) {
              tracked = {
                principal: identity.principal,
                // Sending the status also cancels the handler side (grpc-js notifies
                // onCancel), which closes subscriptions and aborts pending requests.
                end: details => {
                  done();
                  call.sendStatus({ code: status.UNAUTHENTICATED, details });
                },
              };
              this.streams.add(tracked);
            }
            mdNext(metadata);
          },
          onCancel: done,
        }),
      sendStatus: (st, next) => {
        done();
        next(st);
      },
    });
  };

  /** Open streaming calls made with a token. */
  get trackedStreams(): number {
    return this.streams.size;
  }

  /**
   * Ends (UNAUTHENTICATED) every open stream whose token was removed, changed or has
   * expired since the stream began. Called after each poll of the tokens file.
   */
  sweep(): number {
    const tokens = this.tokens;
    if (!tokens) return 0;
    let ended = 0;
    for (const s of [...this.streams]) {
      if (tokens.stillValid(s.principal)) continue;
      ended++;
      const details =
        s.principal.kind === 'certificate'
          ? `${principalLabel(s.principal)} was removed from the tokens file, changed or has expired: this stream is ended; reconnect with a token or a certificate the tokens file names`
          : `token ${quote(s.principal.name)} was removed, changed or has expired: this stream is ended; reconnect with a valid token`;
      this.refuse('unauthenticated', new UnauthenticatedError(details), named(s.principal));
      s.end(details);
    }
    return ended;
  }

  /**
   * A presented token decides (even when the client certificate matches an entry too);
   * without one, a verified client certificate is matched against the certificate
   * entries, when the tokens file has any (else certificates are never read).
   */
  private identify(
    metadata: Metadata,
    call: CertifiedCall & { getPeer(): string },
    method: string
  ): CallIdentity {
    if (!this.tokens) {
      metadata.remove('authorization');
      return { principal: ANONYMOUS, client: addressKey(call.getPeer()) };
    }
    const token = bearerToken(metadata.get('authorization'));
    // Handlers, logs and traces never see the token.
    metadata.remove('authorization');
    try {
      const principal =
        token === undefined && this.tokens.certificateEntryCount > 0
          ? this.tokens.authenticateCertificate(this.peerIdentities.identityOf(call))
          : this.tokens.authenticate(token);
      return {
        principal,
        client: `${principal.kind === 'certificate' ? 'cert' : 'token'}:${principal.name}`,
      };
    } catch (err) {
      this.refuse('unauthenticated', err as MeshwireError, { method, peer: call.getPeer() });
      throw err;
    }
  }

  /** The identity the interceptor attached to a call's metadata. */
  identity(metadata: Metadata): CallIdentity {
    const id = this.identities.get(metadata);
    if (id) return id;
    if (!this.tokens) return { principal: ANONYMOUS, client: 'addr:unknown' };
    throw new InternalError('call reached a handler without passing the auth interceptor');
  }

  /**
   * Throws PermissionDeniedError when the caller may not publish (Send, Request) to
   * `topic`. Invalid topics pass: the node rejects them with INVALID_ARGUMENT.
   */
  checkPublish(metadata: Metadata, topic: string | undefined): void {
    const p = this.identity(metadata).principal;
    if (p === ANONYMOUS || topic === undefined) return;
    try {
      validateTopic(topic);
    } catch {
      return;
    }
    const v = p.publish.checkTopic(topic);
    if (!v.ok) {
      const err = new PermissionDeniedError(
        `${principalLabel(p)} may not publish to ${quote(topic)}: ${v.reason === 'denied' ? 'denied by' : 'not matched by publish'} ${v.rule}`
      );
      this.refuse('permission_denied', err, named(p));
      throw err;
    }
  }

  /**
   * checkPublish for every message of a SendStream request, in order; the caller's
   * identity is looked up once, not once a message.
   */
  checkPublishAll(
    metadata: Metadata,
    messages: readonly ({ topic?: string } | null | undefined)[]
  ): void {
    if (this.identity(metadata).principal === ANONYMOUS) return;
    for (const m of messages) this.checkPublish(metadata, m?.topic);
  }

  /** Throws PermissionDeniedError unless every topic each pattern matches may be received. */
  checkSubscribe(metadata: Metadata, patterns: readonly string[] | undefined): void {
    const p = this.identity(metadata).principal;
    if (p === ANONYMOUS || !patterns) return;
    for (const pattern of patterns) {
      validatePattern(pattern); // INVALID_ARGUMENT before any permission question
      const v = p.subscribe.checkPattern(pattern);
      if (!v.ok) {
        const err = new PermissionDeniedError(
          `${principalLabel(p)} may not subscribe to ${quote(pattern)}: ${
            v.reason === 'denied'
              ? `it overlaps subscribe ${v.rule}`
              : `not every topic it matches is within subscribe ${v.rule}`
          }`
        );
        this.refuse('permission_denied', err, named(p));
        throw err;
      }
    }
  }

  /**
   * Respond answers a request received through Subscribe: the reply token is an
   * unguessable capability handed only to a subscriber whose pattern was checked. A token
   * whose subscribe rights are empty may not respond at all.
   */
  checkRespond(metadata: Metadata): void {
    const p = this.identity(metadata).principal;
    if (p === ANONYMOUS) return;
    if (p.subscribe.rules.allow.length === 0) {
      const err = new PermissionDeniedError(
        `${principalLabel(p)} may not respond: its subscribe rule allow [] allows nothing`
      );
      this.refuse('permission_denied', err, named(p));
      throw err;
    }
  }

  /** Takes an in-flight slot for one RequestStream entry (release when it settles). */
  acquireInFlight(metadata: Metadata): () => void {
    return this.limits.acquire(this.identity(metadata).client, 'inFlight');
  }
}

/** gRPC status codes the guard produces, for tests and docs. */
export const GUARD_STATUS = {
  unauthenticated: status.UNAUTHENTICATED,
  permissionDenied: status.PERMISSION_DENIED,
  resourceExhausted: status.RESOURCE_EXHAUSTED,
} as const;

/** Registers the auth metrics, read at scrape time. */
export function registerGuardMetrics(meter: Meter, guard: ApiGuard): void {
  meter
    .createObservableCounter('meshwire.auth.rejected', {
      description: 'Calls refused by authentication or topic permissions, by reason',
      unit: '{call}',
    })
    .addCallback(r => {
      for (const reason of AUTH_REJECT_REASONS) r.observe(guard.rejected.get(reason), { reason });
    });
}
