/**
 * The cluster secrets a node accepts, read from clusterSecretFile or clusterSecretDir,
 * and kept reloaded so a secret can be rotated without restarting (docs/security.md,
 * "Rotating the cluster secret").
 *
 * A file is either
 * - one secret, byte for byte (the format every earlier version read, binary or text,
 *   trailing newline included): any file that does not start with the header below; or
 * - a list: first line `# meshwire cluster secrets`, then one secret per line (its text,
 *   surrounding whitespace removed, or `base64:<bytes>` for any bytes), blank lines and
 *   `#` lines ignored. The first secret is the one this node sends with.
 *
 * A directory (a Kubernetes Secret mounted as a volume): every regular file whose name
 * does not start with `.` (Kubernetes keeps its own `..data` links there), in sorted name
 * order, each read as above; the first secret of the first file sends. Naming the keys
 * `current`, `next` and `previous` gives that order.
 *
 * Each secret is at least 16 bytes; repeats are dropped; at most MAX_CLUSTER_SECRETS.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock, Timer } from '../common';
import { InvalidArgumentError, repeatEvery, systemClock } from '../common';
import { MAX_CLUSTER_SECRETS } from '../transport';
import type { NodeConfig } from './config-keys';

/** The first line that makes a secret file a list of secrets. */
export const SECRET_LIST_HEADER = '# meshwire cluster secrets';
const MIN_SECRET_BYTES = 16;
const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** Secrets read from one file (`path` names it in errors). Throws InvalidArgumentError. */
export function parseSecretFile(path: string, content: Buffer): Buffer[] {
  const firstEnd = content.indexOf(0x0a);
  const firstLine = content
    .subarray(0, firstEnd === -1 ? content.length : firstEnd)
    .toString('latin1')
    .trimEnd();
  if (firstLine !== SECRET_LIST_HEADER) {
    // one secret, the whole file: what clusterSecretFile always held
    if (content.length < MIN_SECRET_BYTES)
      throw new InvalidArgumentError(
        `cluster secret file ${path}: the secret is ${content.length} bytes, at least ${MIN_SECRET_BYTES} are needed`
      );
    return [content];
  }
  const out: Buffer[] = [];
  const lines = content.toString('utf8').split('\n');
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '' || line.startsWith('#')) continue;
    const where = `cluster secret file ${path} line ${i + 1}`;
    let secret: Buffer;
    if (line.startsWith('base64:')) {
      const b64 = line.slice('base64:'.length);
      if (!BASE64_RE.test(b64) || b64.length % 4 === 1)
        throw new InvalidArgumentError(`${where}: not valid base64 after "base64:"`);
      secret = Buffer.from(b64, 'base64');
    } else {
      secret = Buffer.from(line, 'utf8');
    }
    if (secret.length < MIN_SECRET_BYTES)
      throw new InvalidArgumentError(
        `${where}: the secret is ${secret.length} bytes, at least ${MIN_SECRET_BYTES} are needed`
      );
    out.push(secret);
  }
  if (out.length === 0)
    throw new InvalidArgumentError(
      `cluster secret file ${path}: no secret after the "${SECRET_LIST_HEADER}" line`
    );
  return out;
}

/**
 * The secret files of a directory, in the order they are read. Stat follows Kubernetes'
 * symlinks; a dangling one (a key being removed: its link outlives the `..data` swap for
 * a moment) is skipped, not an error.
 */
export function secretDirFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter(name => !name.startsWith('.'))
    .sort()
    .map(name => join(dir, name))
    .filter(path => statSync(path, { throwIfNoEntry: false })?.isFile() ?? false);
}

/** The cluster secrets of a configuration, as read now. */
export interface LoadedSecrets {
  /** First = sends. */
  secrets: Buffer[];
  /** The file or directory they came from. */
  source: string;
  /** Hash of what was read (every file's name and bytes): a reload with the same is a no-op. */
  digest: string;
}

/**
 * Reads and validates the configured secrets; undefined when neither clusterSecretFile nor
 * clusterSecretDir is set (the development secret). Throws InvalidArgumentError (naming the
 * file and line) on an invalid secret, or the file system's error when unreadable.
 */
export function readClusterSecrets(
  cfg: Pick<NodeConfig, 'clusterSecretFile' | 'clusterSecretDir'>
): LoadedSecrets | undefined {
  const source = cfg.clusterSecretFile ?? cfg.clusterSecretDir;
  if (source === undefined) return undefined;
  const files = cfg.clusterSecretFile !== undefined ? [source] : secretDirFiles(source);
  if (files.length === 0)
    throw new InvalidArgumentError(`cluster secret directory ${source} holds no secret file`);
  const hash = createHash('sha256');
  const secrets: Buffer[] = [];
  for (const path of files) {
    const content = readFileSync(path);
    hash.update(path).update('\0').update(createHash('sha256').update(content).digest());
    for (const s of parseSecretFile(path, content)) {
      if (!secrets.some(seen => seen.equals(s))) secrets.push(s);
    }
  }
  if (secrets.length > MAX_CLUSTER_SECRETS)
    throw new InvalidArgumentError(
      `cluster secrets in ${source}: ${secrets.length} distinct secrets, at most ${MAX_CLUSTER_SECRETS} are accepted`
    );
  return { secrets, source, digest: hash.digest('hex') };
}

/** Why a reload was refused (the metric's `reason`). */
export type SecretReloadFailure = 'unreadable' | 'invalid';

export interface SecretReloaderInit {
  config: Pick<NodeConfig, 'clusterSecretFile' | 'clusterSecretDir'>;
  /** The set read at start (its digest is the one to compare with). */
  initial: LoadedSecrets;
  /** Installs a new set; throws to refuse it (the old set stays). */
  apply(secrets: Buffer[]): void;
  log: {
    info(obj: object, msg: string): void;
    warn(obj: object, msg: string): void;
  };
  /** @default 5000 */
  intervalMs?: number;
  clock?: Clock;
}

/**
 * Polls the secret file or directory (reading through symlinks, so Kubernetes' swap of a
 * mounted Secret's `..data` link is seen like any rewrite) and applies a changed set.
 * A set that cannot be read or is invalid is refused: the old set stays, the reason is
 * logged once per distinct failure and counted.
 */
export class SecretReloader {
  private digest: string;
  private lastFailure = '';
  private timer: Timer | undefined;
  private stopped = false;
  private readonly clock: Clock;
  /** Sets applied after the first. */
  reloads = 0;
  /** Refused reloads, by reason. */
  readonly failures: Record<SecretReloadFailure, number> = { unreadable: 0, invalid: 0 };

  constructor(private readonly init: SecretReloaderInit) {
    this.digest = init.initial.digest;
    this.clock = init.clock ?? systemClock;
  }

  /** Reads the secrets now; applies them when they changed. True when a new set was applied. */
  check(): boolean {
    let loaded: LoadedSecrets | undefined;
    try {
      loaded = readClusterSecrets(this.init.config);
      if (!loaded || loaded.digest === this.digest) {
        this.lastFailure = '';
        return false;
      }
      this.init.apply(loaded.secrets);
    } catch (err) {
      const reason: SecretReloadFailure =
        err instanceof InvalidArgumentError ? 'invalid' : 'unreadable';
      const message = (err as Error).message;
      // once per distinct failure: a bad file stays bad across polls
      const key = `${loaded?.digest ?? ''}|${message}`;
      if (key !== this.lastFailure) {
        this.lastFailure = key;
        this.failures[reason]++;
        this.init.log.warn(
          { reason, error: message },
          'cluster secret reload refused: keeping the previous secrets'
        );
      }
      return false;
    }
    this.digest = loaded.digest;
    this.lastFailure = '';
    this.reloads++;
    this.init.log.info(
      { source: loaded.source, secrets: loaded.secrets.length, reloads: this.reloads },
      'cluster secrets reloaded'
    );
    return true;
  }

  start(): this {
    if (!this.stopped)
      this.timer = repeatEvery(this.clock, this.init.intervalMs ?? 5000, () => this.check());
    return this;
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
  }
}
