/**
 * Keeps DNS-named peers resolved: every directory entry with a `dnsName` is looked up
 * (A and AAAA) now and every `intervalMs`, with exponential backoff after failures, and
 * its addresses replaced when the answer changes (a restarted pod's new IP).
 */
import { Resolver } from 'node:dns/promises';
import type { Clock, HostPort, Timer } from '../common';
import { systemClock } from '../common';
import type { PeerDirectory, PeerEntry } from './directory';

export interface DnsResolverInit {
  /** DNS servers ("ip" or "ip:port"); default: the system's. */
  servers?: string[];
  /** @default 10000 */
  intervalMs?: number;
  /** First retry after a failure; doubles up to intervalMs. @default 250 */
  retryBaseMs?: number;
  /** Timers of the re-resolution schedule (a simulation's virtual clock). @default systemClock */
  clock?: Clock;
}

interface State {
  timer: Timer | undefined;
  failures: number;
  lastError: string;
}

export class DnsResolver {
  private readonly resolver = new Resolver({ timeout: 2000, tries: 2 });
  private readonly state = new Map<string, State>();
  private running = false;
  private readonly intervalMs: number;
  private readonly retryBaseMs: number;
  private readonly clock: Clock;
  private readonly onPut = (entry: PeerEntry, previous: PeerEntry | undefined): void => {
    if (entry.dnsName && entry.dnsName !== previous?.dnsName) this.schedule(entry.id, 0);
  };
  private readonly onDelete = (entry: PeerEntry): void => this.cancel(entry.id);

  constructor(
    private readonly directory: PeerDirectory,
    init: DnsResolverInit = {}
  ) {
    if (init.servers && init.servers.length > 0) this.resolver.setServers(init.servers);
    this.intervalMs = init.intervalMs ?? 10_000;
    this.retryBaseMs = init.retryBaseMs ?? 250;
    this.clock = init.clock ?? systemClock;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.directory.on('put', this.onPut);
    this.directory.on('delete', this.onDelete);
    for (const e of this.directory.list()) if (e.dnsName) this.schedule(e.id, 0);
  }

  stop(): void {
    this.running = false;
    this.directory.off('put', this.onPut);
    this.directory.off('delete', this.onDelete);
    for (const id of [...this.state.keys()]) this.cancel(id);
  }

  /** Last resolution error of a peer ('' when fine). */
  lastError(id: string): string {
    return this.state.get(id)?.lastError ?? '';
  }

  private cancel(id: string): void {
    const s = this.state.get(id);
    s?.timer?.cancel();
    this.state.delete(id);
  }

  private schedule(id: string, delayMs: number): void {
    if (!this.running) return;
    let s = this.state.get(id);
    if (!s) this.state.set(id, (s = { timer: undefined, failures: 0, lastError: '' }));
    s.timer?.cancel();
    // systemClock timers are unref'd, as these were: DNS never holds the process open.
    s.timer = this.clock.setTimer(delayMs, () => void this.resolve(id));
  }

  private async resolve(id: string): Promise<void> {
    const entry = this.directory.get(id);
    const s = this.state.get(id);
    if (!entry?.dnsName || !s || !this.running) return;
    const name = entry.dnsName;
    const port = entry.dnsPort ?? 0;
    const found: HostPort[] = [];
    const errors: string[] = [];
    for (const lookup of [() => this.resolver.resolve4(name), () => this.resolver.resolve6(name)]) {
      try {
        for (const ip of await lookup()) found.push({ host: ip, port });
      } catch (err) {
        errors.push((err as NodeJS.ErrnoException).code ?? (err as Error).message);
      }
    }
    if (!this.running || this.directory.get(id)?.dnsName !== name) return;
    if (found.length === 0) {
      s.failures++;
      s.lastError = `DNS ${name}: ${errors.join(', ') || 'no addresses'}`;
      const delay = Math.min(this.intervalMs, this.retryBaseMs * 2 ** Math.min(s.failures - 1, 10));
      this.schedule(id, delay * (0.5 + Math.random() / 2));
      return;
    }
    s.failures = 0;
    s.lastError = '';
    found.sort((a, b) => a.host.localeCompare(b.host));
    const current = [...entry.addresses].sort((a, b) => a.host.localeCompare(b.host));
    const same =
      current.length === found.length &&
      current.every((a, i) => a.host === found[i].host && a.port === found[i].port);
    if (!same) this.directory.setAddresses(id, found);
    this.schedule(id, this.intervalMs);
  }
}
