/**
 * CIDR lists (IPv4 and IPv6) for allow-lists such as `addressTargetCidrs`
 * (src/app/config-keys.ts). Matching uses node:net's BlockList, which also matches an
 * IPv4-mapped IPv6 address (::ffff:10.0.0.1) against IPv4 ranges.
 */
import { BlockList, isIP } from 'node:net';
import { InvalidArgumentError } from './errors';

/** One parsed range: network address, prefix length and family. */
export interface Cidr {
  address: string;
  prefix: number;
  family: 4 | 6;
}

/**
 * Parses "10.0.0.0/8", "fd00::/8" or a bare address (a /32 or /128). Throws
 * InvalidArgumentError saying what is wrong.
 */
export function parseCidr(input: string): Cidr {
  const text = input.trim();
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(address);
  if (family === 0) {
    throw new InvalidArgumentError(`"${input}" is not a CIDR: "${address}" is not an IP address`);
  }
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) {
      throw new InvalidArgumentError(
        `"${input}" is not a CIDR: the prefix length must be a number from 0 to ${max}`
      );
    }
    prefix = Number(p);
  }
  return { address, prefix, family: family as 4 | 6 };
}

/** The canonical text of a range, e.g. "10.0.0.0/8". */
export function formatCidr(c: Cidr): string {
  return `${c.address}/${c.prefix}`;
}

/** Accepts a comma-separated string or a list of strings. */
export function parseCidrList(value: string | readonly string[]): Cidr[] {
  const items = typeof value === 'string' ? value.split(',') : [...value];
  const out: Cidr[] = [];
  for (const item of items) {
    if (typeof item !== 'string') {
      throw new InvalidArgumentError('every entry must be a string such as "10.0.0.0/8"');
    }
    if (item.trim() === '') continue;
    out.push(parseCidr(item));
  }
  return out;
}

/** A set of ranges with a membership test. */
export class CidrSet {
  readonly ranges: readonly Cidr[];
  private readonly list = new BlockList();
  /** True when the set holds 0.0.0.0/0 and ::/0: every address matches. */
  readonly matchesAll: boolean;

  constructor(ranges: readonly Cidr[]) {
    this.ranges = ranges;
    for (const r of ranges) {
      this.list.addSubnet(r.address, r.prefix, r.family === 4 ? 'ipv4' : 'ipv6');
    }
    this.matchesAll =
      ranges.some(r => r.family === 4 && r.prefix === 0) &&
      ranges.some(r => r.family === 6 && r.prefix === 0);
  }

  /** True when `ip` (an IPv4 or IPv6 address, not a name) is inside a range. */
  has(ip: string): boolean {
    const family = isIP(ip);
    if (family === 0) return false;
    return this.list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
  }

  toString(): string {
    return this.ranges.map(formatCidr).join(',');
  }
}
