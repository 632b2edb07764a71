import { quote } from './text';
import { isIP } from 'node:net';
import { getSystemErrorMap } from 'node:util';
import { InvalidArgumentError } from './errors';

/** A host and port; IPv6 hosts are kept without brackets. */
export interface HostPort {
  host: string;
  port: number;
}

const HOSTNAME_RE =
  /^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*\.?$/;

/**
 * Parses "host:port", "[v6]:port" or "v4:port". Throws InvalidArgumentError naming `what`
 * (e.g. "grpcListen") with what is allowed. `allowPortZero` permits ephemeral ports (listen
 * addresses in tests).
 */
/** Longest "host:port" accepted: a 253-character DNS name, a colon and a port, with room. */
export const MAX_ADDRESS_CHARS = 261;

export function parseHostPort(input: string, what: string, allowPortZero = false): HostPort {
  if (input.length > MAX_ADDRESS_CHARS) {
    throw new InvalidArgumentError(
      `${what} ${quote(input)} is too long: an address has at most ${MAX_ADDRESS_CHARS} characters`
    );
  }
  const value = input.trim();
  let host: string;
  let portText: string;
  if (value.startsWith('[')) {
    const end = value.indexOf(']');
    if (end < 0 || value[end + 1] !== ':') {
      throw new InvalidArgumentError(
        `${what} ${quote(input)} is not a valid address: expected "[ipv6]:port"`
      );
    }
    host = value.slice(1, end);
    portText = value.slice(end + 2);
    if (isIP(host) !== 6) {
      throw new InvalidArgumentError(
        `${what} ${quote(input)}: ${quote(host)} is not an IPv6 address`
      );
    }
  } else {
    const colon = value.lastIndexOf(':');
    if (colon <= 0 || value.indexOf(':') !== colon) {
      throw new InvalidArgumentError(
        `${what} ${quote(input)} is not a valid address: expected "host:port" (IPv6 as "[::1]:port")`
      );
    }
    host = value.slice(0, colon);
    portText = value.slice(colon + 1);
    if (isIP(host) === 0 && !HOSTNAME_RE.test(host)) {
      throw new InvalidArgumentError(
        `${what} ${quote(input)}: ${quote(host)} is not an IP address or host name`
      );
    }
  }
  if (!/^\d{1,5}$/.test(portText)) {
    throw new InvalidArgumentError(
      `${what} ${quote(input)}: port must be a number from 1 to 65535`
    );
  }
  const port = Number(portText);
  if (port > 65535 || (port === 0 && !allowPortZero)) {
    throw new InvalidArgumentError(
      `${what} ${quote(input)}: port must be a number from ${allowPortZero ? 0 : 1} to 65535`
    );
  }
  return { host, port };
}

/** The canonical text form: "host:port" or "[v6]:port". */
export function formatHostPort(addr: HostPort): string {
  return isIP(addr.host) === 6 ? `[${addr.host}]:${addr.port}` : `${addr.host}:${addr.port}`;
}

/**
 * True when `host` only ever accepts traffic from this machine: 127.0.0.0/8, ::1,
 * ::ffff:127.x or "localhost". Wildcards (0.0.0.0, ::) and every other address or name
 * are reachable from elsewhere.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) {
    if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    return mapped !== null && mapped[1].startsWith('127.');
  }
  return false;
}

/**
 * The operating system's wording for a system error ("address already in use" for
 * EADDRINUSE), read from `err.code` or from an E-code in the message (grpc-js wraps bind
 * errors in its own text); else the error's message.
 */
export function systemErrorReason(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  const text = typeof e?.message === 'string' ? e.message : String(err);
  const code = typeof e?.code === 'string' ? e.code : /\b(E[A-Z][A-Z0-9]+)\b/.exec(text)?.[1];
  if (code) {
    for (const [name, description] of getSystemErrorMap().values()) {
      if (name === code) return description;
    }
  }
  return text;
}
