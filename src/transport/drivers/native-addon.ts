/**
 * meshwire's own native addons (native/*.c), built by `make build` into build/*.node. Each
 * is optional: a caller that gets null falls back to a pure-Node path, and the reason is
 * kept for the error a user sees when they ask for the native path by name.
 */
import { join } from 'node:path';

const loaded = new Map<string, { addon: unknown; error: string }>();

/** build/<name>.node, or null when it is missing or does not load here. */
export function loadNativeAddon<T>(name: string): T | null {
  let entry = loaded.get(name);
  if (!entry) {
    // dist/src/transport/drivers -> repository (or image) root, where `make build` puts build/
    const file = join(__dirname, '..', '..', '..', '..', 'build', `${name}.node`);
    try {
      // a native addon loads only through require
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      entry = { addon: require(file) as unknown, error: '' };
    } catch (err) {
      const why = (err as Error).message.split('\n')[0];
      entry = { addon: null, error: `${file} does not load (${why}); run make build` };
    }
    loaded.set(name, entry);
  }
  return entry.addon as T | null;
}

/** Why loadNativeAddon(name) returned null ('' when it loaded). */
export function nativeAddonError(name: string): string {
  loadNativeAddon(name);
  return loaded.get(name)?.error ?? '';
}
