/**
 * gRPC TLS from files, optional client-certificate verification (mTLS), and certificate
 * reload without restart.
 *
 * grpc-js (1.14) re-keys a bound server when its ServerCredentials announce new secure
 * context options: server.ts adds a watcher that calls `http2SecureServer.setSecureContext`.
 * `ReloadingServerCredentials` uses that hook. The files are polled by content, not by
 * fs.watch, because Kubernetes rotates a mounted Secret by swapping a symlink (`..data`),
 * which inotify on the file itself does not report. A new set is applied only once it
 * forms a valid secure context (certificate and key match): a half-written rotation keeps
 * the previous certificate in service instead of refusing every connection (which is
 * what grpc-js' own FileWatcherCertificateProvider does on a mismatched pair).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SecureContextOptions } from 'node:tls';
import { createSecureContext } from 'node:tls';
import { ServerCredentials } from '@grpc/grpc-js';
import type { Clock, Timer } from '../common';
import { repeatEvery, systemClock } from '../common';
import type { Logger } from '../telemetry';

/** How often certificate and token files are checked for changes. */
export const DEFAULT_RELOAD_INTERVAL_MS = 5000;

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** CA bundle for client certificates: when set, clients must present one (mTLS). */
  clientCaFile?: string;
}

/**
 * Polls a set of files and calls `onChange` with their contents when any of them
 * changed since the last call (content hash, so symlink swaps and rewrites both count).
 */
export class FileSetWatcher {
  private lastHash = '';
  private timer: Timer | undefined;
  private stopped = false;

  constructor(
    private readonly files: readonly string[],
    private readonly onChange: (contents: Buffer[]) => void,
    private readonly intervalMs: number = DEFAULT_RELOAD_INTERVAL_MS,
    private readonly clock: Clock = systemClock,
    private readonly onError: (err: Error) => void = () => undefined,
    /** Called after every timed check, changed or not. */
    private readonly onPoll: () => void = () => undefined
  ) {}

  /** Reads the files now; calls onChange when they differ from the last read. */
  check(): void {
    let contents: Buffer[];
    try {
      contents = this.files.map(f => readFileSync(f));
    } catch (err) {
      this.onError(err as Error);
      return;
    }
    const h = createHash('sha256');
    for (const c of contents) h.update(createHash('sha256').update(c).digest());
    const digest = h.digest('hex');
    if (digest === this.lastHash) return;
    this.lastHash = digest;
    this.onChange(contents);
  }

  /** Starts polling (the first check is immediate and synchronous). */
  start(): this {
    this.check();
    if (!this.stopped)
      this.timer = repeatEvery(this.clock, this.intervalMs, () => {
        this.check();
        this.onPoll();
      });
    return this;
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }
}

/**
 * Server credentials whose certificate, key and client CA can be replaced while the
 * server runs; connections made after `update` use the new ones, open ones keep theirs.
 */
export class ReloadingServerCredentials extends ServerCredentials {
  constructor(
    initial: SecureContextOptions,
    readonly mutual: boolean
  ) {
    // requestCert + rejectUnauthorized: a client without a certificate signed by the CA
    // fails the TLS handshake (mTLS). Without a CA, no client certificate is asked.
    super({ requestCert: mutual, rejectUnauthorized: mutual }, initial);
  }

  /** Validates and applies new options. Throws (and keeps the old ones) when invalid. */
  update(options: SecureContextOptions): void {
    createSecureContext(options); // throws on a key that does not match the certificate
    this.updateSecureContextOptions(options);
  }

  _equals(other: ServerCredentials): boolean {
    return this === other;
  }
}

export interface TlsReloader {
  credentials: ReloadingServerCredentials;
  /** Certificate sets applied after the first one. */
  readonly reloads: number;
  /** Changed sets refused because they were invalid (the previous set stayed). */
  readonly failures: number;
  stop(): void;
}

function contextOptions(contents: Buffer[], mutual: boolean): SecureContextOptions {
  return mutual
    ? { cert: contents[0], key: contents[1], ca: contents[2] }
    : { cert: contents[0], key: contents[1] };
}

/**
 * Loads the TLS files (throws when they are unreadable or do not form a valid context:
 * a node must not start with a broken TLS setup) and keeps them reloaded.
 */
export function startTlsReloader(
  files: TlsFiles,
  log: Logger,
  intervalMs = DEFAULT_RELOAD_INTERVAL_MS,
  clock: Clock = systemClock
): TlsReloader {
  const mutual = files.clientCaFile !== undefined;
  const paths = [files.certFile, files.keyFile, ...(mutual ? [files.clientCaFile as string] : [])];
  const initial = contextOptions(
    paths.map(p => readFileSync(p)),
    mutual
  );
  createSecureContext(initial);
  const credentials = new ReloadingServerCredentials(initial, mutual);
  const state = { reloads: 0, failures: 0 };
  let first = true;
  const watcher = new FileSetWatcher(
    paths,
    contents => {
      if (first) {
        first = false;
        return;
      }
      try {
        credentials.update(contextOptions(contents, mutual));
        state.reloads++;
        log.info({ cert_file: files.certFile }, 'TLS certificate reloaded');
      } catch (err) {
        state.failures++;
        log.warn(
          { cert_file: files.certFile, err: (err as Error).message },
          'TLS files changed but do not form a valid certificate/key pair; still serving the previous one'
        );
      }
    },
    intervalMs,
    clock,
    err => log.warn({ err: err.message }, 'cannot read TLS files; still serving the previous ones')
  );
  watcher.start();
  return {
    credentials,
    get reloads() {
      return state.reloads;
    },
    get failures() {
      return state.failures;
    },
    stop: () => watcher.stop(),
  };
}
