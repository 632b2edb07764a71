/**
 * Absolute paths of system tools (nft, ip, ethtool). Under npm/npx, node_modules/.bin
 * comes first on PATH, and ava's dependency @vercel/nft installs a `nft` there that is
 * not nftables: a plain `nft` would silently inject no loss at all.
 */
import { existsSync } from 'node:fs';

const SYSTEM_DIRS = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];
const cache = new Map<string, string>();

/** The system binary `name` (first of /usr/sbin, /sbin, /usr/bin, /bin), else `name`. */
export function systemTool(name: string): string {
  let path = cache.get(name);
  if (path === undefined) {
    path = SYSTEM_DIRS.map(d => `${d}/${name}`).find(p => existsSync(p)) ?? name;
    cache.set(name, path);
  }
  return path;
}
