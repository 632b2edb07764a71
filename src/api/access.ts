/**
 * Who may call the API and how much: the tokens file and TLS certificates (both
 * reloaded when they change) and the guard with its per-client limits and memory budget.
 * A component (start/stop) so the app starts it before the gRPC server that uses it.
 */
import type { Component, DropLedger } from '../common';
import type { Logger } from '../telemetry';
import type { TokenFileHandle } from './auth';
import { watchTokensFile } from './auth';
import { ApiGuard } from './auth-guard';
import type { ApiConfig } from './config';
import { ClientLimits, MemoryBudget } from './limits';
import type { TlsReloader } from './tls';
import { DEFAULT_RELOAD_INTERVAL_MS, startTlsReloader } from './tls';

export interface ApiAccessInit {
  config: ApiConfig;
  logger: Logger;
  /** How often TLS and tokens files are checked for changes. @default 5000 */
  reloadIntervalMs?: number;
  /** Where the memory budget's drops are counted (the node's ledger). */
  drops?: DropLedger;
}

export class ApiAccess implements Component {
  readonly name = 'auth and limits';
  private guardValue: ApiGuard | undefined;
  /** Certificate reloads (undefined without TLS, or before start()). */
  tls: TlsReloader | undefined;
  /** Tokens file reloads (undefined with auth off, or before start()). */
  tokens: TokenFileHandle | undefined;

  constructor(private readonly init: ApiAccessInit) {}

  /** Authentication, topic permissions and per-client limits (after start()). */
  get guard(): ApiGuard {
    if (!this.guardValue) throw new Error('ApiAccess.guard before start()');
    return this.guardValue;
  }

  /** Reads the tokens file and the certificates (a bad file rejects with its reason). */
  async start(): Promise<void> {
    const { config: cfg, logger: log } = this.init;
    const reloadMs = this.init.reloadIntervalMs ?? DEFAULT_RELOAD_INTERVAL_MS;
    // After every tokens poll, end the streams of removed or expired tokens.
    const sweep = (): void => {
      const ended = this.guardValue?.sweep() ?? 0;
      if (ended > 0) log.info({ streams: ended }, 'ended streams of removed or expired tokens');
    };
    try {
      this.tokens = cfg.authTokensFile
        ? watchTokensFile(
            cfg.authTokensFile,
            log.child({ component: 'auth' }),
            reloadMs,
            undefined,
            undefined,
            sweep,
            // certificate entries only where client certificates are verified (mTLS)
            { clientCertificatesVerified: Boolean(cfg.tlsClientCaFile && cfg.tlsCertFile) }
          )
        : undefined;
      this.tls =
        cfg.tlsCertFile && cfg.tlsKeyFile
          ? startTlsReloader(
              {
                certFile: cfg.tlsCertFile,
                keyFile: cfg.tlsKeyFile,
                clientCaFile: cfg.tlsClientCaFile,
              },
              log.child({ component: 'tls' }),
              reloadMs
            )
          : undefined;
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.guardValue = new ApiGuard({
      tokens: this.tokens?.store,
      limits: new ClientLimits(cfg),
      budget: new MemoryBudget(cfg.memoryBudgetBytes, this.init.drops),
      log: log.child({ component: 'auth' }),
    });
  }

  /** Stops watching the files. */
  stop(): Promise<void> {
    this.tls?.stop();
    this.tokens?.stop();
    return Promise.resolve();
  }
}
