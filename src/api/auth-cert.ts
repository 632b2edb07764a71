/**
 * Identities from verified client certificates (mTLS): the `certificate:` matcher of a
 * tokens-file entry, what a peer certificate presents (subject CN, DNS and URI SANs,
 * SPIFFE IDs), and a per-connection cache so a call does not read and parse the peer
 * certificate again.
 *
 * Matching is exact: `cn` compares the subject CN (case-sensitive), `uri` and `spiffe`
 * compare a URI SAN (case-sensitive; `spiffe` also checks the value is a SPIFFE ID),
 * `dns` compares a DNS SAN ignoring case. One wildcard form exists, for `dns` only:
 * `*.prod.svc` matches a SAN with exactly one more, non-wildcard label (`orders.prod.svc`,
 * not `a.b.prod.svc` nor `prod.svc`).
 */
import type { PeerCertificate } from 'node:tls';
import { z } from 'zod';

/** One way of naming a client certificate, as written in the tokens file. */
export type CertificateMatcher =
  | { kind: 'cn'; value: string }
  | { kind: 'dns'; value: string }
  | { kind: 'uri'; value: string }
  | { kind: 'spiffe'; value: string };

export const CERTIFICATE_MATCHER_KINDS = ['cn', 'dns', 'uri', 'spiffe'] as const;

/** SPIFFE ID: spiffe://<trust domain>/<path>, as the SPIFFE standard allows them. */
const SPIFFE_ID = /^spiffe:\/\/[a-z0-9._-]{1,255}(\/[A-Za-z0-9._-]+)*$/;
const DNS_NAME = /^(\*\.)?([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*[A-Za-z0-9_-]{1,63}$/;

/** The zod schema of `certificate:` in a tokens-file entry (exactly one key). */
export const certificateSchema = z
  .object({
    cn: z.string().min(1, 'cn is empty').max(1024).optional(),
    dns: z
      .string()
      .max(253)
      .regex(DNS_NAME, 'dns is a DNS name such as "orders.prod.svc" or "*.prod.svc"')
      .optional(),
    uri: z.string().min(1, 'uri is empty').max(2048).optional(),
    spiffe: z
      .string()
      .max(2048)
      .regex(SPIFFE_ID, 'spiffe is a SPIFFE ID such as "spiffe://cluster.local/ns/prod/sa/orders"')
      .optional(),
  })
  .strict()
  .refine(c => Object.values(c).filter(v => v !== undefined).length === 1, {
    message: 'certificate takes exactly one of cn, dns, uri, spiffe',
  });

/** The matcher of a parsed `certificate:` object (validated by certificateSchema). */
export function toMatcher(c: z.infer<typeof certificateSchema>): CertificateMatcher {
  if (c.cn !== undefined) return { kind: 'cn', value: c.cn };
  if (c.dns !== undefined) return { kind: 'dns', value: c.dns.toLowerCase() };
  if (c.uri !== undefined) return { kind: 'uri', value: c.uri };
  return { kind: 'spiffe', value: c.spiffe as string };
}

/** What a verified client certificate presents, parsed once per connection. */
export interface PeerIdentity {
  /** Subject CNs (usually one). */
  readonly cns: readonly string[];
  /** DNS SANs, lower-cased. */
  readonly dns: readonly string[];
  /** URI SANs (SPIFFE IDs among them). */
  readonly uris: readonly string[];
  /** SHA-256 fingerprint of the certificate ("AB:CD:..."). */
  readonly fingerprint: string;
}

/**
 * Splits node's `subjectaltname` ("DNS:a, URI:spiffe://x/y, IP Address:1.2.3.4") into
 * (type, value) pairs. Node quotes a value holding a comma, quote or control character as
 * a JSON string (`DNS:"a,b"`), so such a value cannot fake a second entry.
 */
export function parseSubjectAltName(text: string | undefined): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (!text) return out;
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon < 0) break;
    const type = text.slice(i, colon);
    let value: string;
    let next: number;
    if (text[colon + 1] === '"') {
      // A JSON string: find its closing quote (one not escaped).
      let j = colon + 2;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(text.slice(colon + 1, j + 1)) as string;
      } catch {
        value = text.slice(colon + 2, j);
      }
      next = j + 1;
    } else {
      const end = text.indexOf(', ', colon + 1);
      next = end < 0 ? text.length : end;
      value = text.slice(colon + 1, next);
    }
    out.push([type, value]);
    if (text.startsWith(', ', next)) next += 2;
    i = next;
  }
  return out;
}

/** The CNs and SANs of node's PeerCertificate. */
export function peerIdentityOf(cert: PeerCertificate): PeerIdentity {
  const cn = (cert.subject as Partial<PeerCertificate['subject']> | undefined)?.CN as
    string | string[] | undefined;
  const dns: string[] = [];
  const uris: string[] = [];
  for (const [type, value] of parseSubjectAltName(cert.subjectaltname)) {
    if (type === 'DNS') dns.push(value.toLowerCase());
    else if (type === 'URI') uris.push(value);
  }
  return {
    cns: cn === undefined ? [] : Array.isArray(cn) ? cn : [cn],
    dns,
    uris,
    fingerprint: cert.fingerprint256 ?? '',
  };
}

function dnsMatches(pattern: string, name: string): boolean {
  if (!pattern.startsWith('*.')) return pattern === name;
  const suffix = pattern.slice(1); // ".prod.svc"
  if (!name.endsWith(suffix)) return false;
  const label = name.slice(0, name.length - suffix.length);
  return label.length > 0 && !label.includes('.') && !label.includes('*');
}

/** True when the certificate presents what the matcher names. */
export function certificateMatches(m: CertificateMatcher, id: PeerIdentity): boolean {
  switch (m.kind) {
    case 'cn':
      return id.cns.includes(m.value);
    case 'dns':
      return id.dns.some(d => dnsMatches(m.value, d));
    case 'uri':
    case 'spiffe':
      return id.uris.includes(m.value);
  }
}

/** The matcher as it is written in the tokens file, for messages: `spiffe: "spiffe://…"`. */
export function describeMatcher(m: CertificateMatcher): string {
  return `${m.kind}: ${JSON.stringify(m.value)}`;
}

/** Longest description of a presented certificate in an error message. */
export const MAX_PRESENTED_CHARS = 300;

/**
 * What a certificate presents, for the refusal message: `CN "x", DNS:a, URI:spiffe://…`,
 * cut at MAX_PRESENTED_CHARS.
 */
export function describePresented(id: PeerIdentity): string {
  const parts = [
    ...id.cns.map(c => `CN ${JSON.stringify(c)}`),
    ...id.dns.map(d => `DNS:${d}`),
    ...id.uris.map(u => `URI:${u}`),
  ];
  const text = parts.length > 0 ? parts.join(', ') : 'no CN and no DNS/URI SAN';
  return text.length > MAX_PRESENTED_CHARS ? `${text.slice(0, MAX_PRESENTED_CHARS)}…` : text;
}

/** Certificates whose parsed identity is kept when the connection cannot be told apart. */
export const PEER_IDENTITY_CACHE_SIZE = 1024;

/** The parts of a grpc-js server call the cache reads (public API: getAuthContext). */
export interface CertifiedCall {
  getAuthContext(): { sslPeerCertificate?: PeerCertificate } | null;
}

/**
 * Parsed peer identities, once per connection. grpc-js' getAuthContext() reads the peer
 * certificate anew on every call (node's getPeerCertificate(): ~15 µs), so the identity is
 * kept per HTTP/2 session (WeakMap: gone with the connection). grpc-js does not expose a
 * call's session, so it is found through private fields (`nextCall` down to the base
 * call's `stream.session`); when that ever fails, the certificate is read per call and
 * only its parsing is cached, by fingerprint, for at most PEER_IDENTITY_CACHE_SIZE
 * certificates (oldest dropped first).
 */
export class PeerIdentityCache {
  private readonly bySession = new WeakMap<object, PeerIdentity | null>();
  private readonly byFingerprint = new Map<string, PeerIdentity>();
  /** Calls whose session could not be found (the fallback path). */
  fallbacks = 0;
  /** Peer certificates read from a TLS socket (once per connection, else once per call). */
  certificatesRead = 0;

  constructor(private readonly maxFingerprints = PEER_IDENTITY_CACHE_SIZE) {}

  /** The verified client certificate's identity; undefined without one. */
  identityOf(call: CertifiedCall): PeerIdentity | undefined {
    const session = sessionOf(call);
    if (session) {
      const known = this.bySession.get(session);
      if (known !== undefined) return known ?? undefined;
      const id = this.read(call);
      this.bySession.set(session, id ?? null);
      return id;
    }
    this.fallbacks++;
    return this.read(call);
  }

  get cachedCertificates(): number {
    return this.byFingerprint.size;
  }

  private read(call: CertifiedCall): PeerIdentity | undefined {
    // grpc-js returns the certificate only when the TLS socket verified it (authorized).
    this.certificatesRead++;
    const cert = call.getAuthContext()?.sslPeerCertificate;
    if (!cert) return undefined;
    const fp = cert.fingerprint256 ?? '';
    const cached = fp ? this.byFingerprint.get(fp) : undefined;
    if (cached) return cached;
    const id = peerIdentityOf(cert);
    if (fp) {
      if (this.byFingerprint.size >= this.maxFingerprints) {
        const oldest = this.byFingerprint.keys().next().value;
        if (oldest !== undefined) this.byFingerprint.delete(oldest);
      }
      this.byFingerprint.set(fp, id);
    }
    return id;
  }
}

/** The HTTP/2 session under a grpc-js server call, or undefined (see PeerIdentityCache). */
function sessionOf(call: unknown): object | undefined {
  let c = call as { nextCall?: unknown; stream?: { session?: unknown } } | undefined;
  for (let hops = 0; c && hops < 16; hops++) {
    const session = c.stream?.session;
    if (session && typeof session === 'object') return session;
    c = c.nextCall as typeof c;
  }
  return undefined;
}
