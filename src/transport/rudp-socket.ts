/**
 * The socket actor: one datagram socket per node, datagrams
 * demultiplexed by destination connection id to one engine per connection. It owns the
 * timers (the engines never do): each engine is ticked at its nextDeadline() and after
 * input or application writes, when the flush policy (src/common/flush-policy.ts) says;
 * socket-scheduler.ts does that. socket-config.ts holds the options and their defaults.
 *
 * Unknown ids: a valid INITIAL opens a connection; a DATA packet for an unknown id is
 * answered with a stateless reset (rate limited) so a peer of a restarted node fails
 * fast; anything else is dropped and counted.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { systemClock } from '../common';
import type { Clock } from '../common';
import { DropCounter, DropLedger } from '../common';
import { CancelledError, UnavailableError } from '../common';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_MAX_DATAGRAM_SIZE,
  DEVELOPMENT_SECRET,
  MAX_HALF_OPEN_CONNECTIONS,
  PROTOCOL_VERSION,
  STATELESS_RESETS_PER_SECOND,
} from './constants';
import {
  ClusterKeyring,
  DEFAULT_AEAD,
  MAX_CLUSTER_SECRETS,
  buildReset,
  selectAeadBackend,
} from './crypto/packet-protection';
import type { AeadBackend, ClusterKeys, InitialInfo } from './crypto/packet-protection';
import type { DatagramSocket, DriverStats, RemoteInfo } from './drivers/datagram-socket';
import { bindUdp } from './drivers/udp-binding';
import { RudpEngine } from './engine/engine';
import { CloseCode } from './engine/types';
import type { EngineInit } from './engine/types';
import { RudpConnection } from './rudp-connection';
import { socketConfig, validate } from './socket-config';
import type {
  ConnectOptions,
  RudpSocketInit,
  SocketConfig,
  SocketDropReason,
  SocketStats,
} from './socket-config';
import { SocketScheduler } from './socket-scheduler';
import type { Entry } from './socket-scheduler';
import {
  CID_LENGTH,
  DATA_HEADER_LENGTH,
  PacketType,
  RESET_LENGTH,
  TAG_LENGTH,
  cidKey,
} from './wire';

export type {
  ConnectOptions,
  RudpSocketInit,
  SocketDropReason,
  SocketStats,
  TransportLogger,
} from './socket-config';

/** See connect(): errors are reported to the connection's own listeners as well. */
function ignoreEarlyError(): void {}

export class RudpSocket extends EventEmitter {
  private readonly clock: Clock;
  private readonly keyring: ClusterKeyring;
  /** Connections accepted, by the index of the secret their INITIAL matched (0 = first). */
  private readonly acceptedBySecret = new Array<number>(MAX_CLUSTER_SECRETS).fill(0);
  private readonly byCid = new Map<string, Entry>();
  private readonly byInitial = new Map<string, Entry>();
  private readonly byRemoteCid = new Map<string, Entry>();
  private lastEntry: Entry | null = null;
  private readonly scheduler: SocketScheduler;
  private readonly ledger: DropLedger;
  private readonly drops: DropCounter<SocketDropReason>;
  private readonly driverDrops: DropCounter<DriverDropReason>;
  /** The driver's counts already moved into the ledger (syncDriverDrops). */
  private readonly driverDropsSeen: Record<DriverDropReason, number> = {
    send_error: 0,
    send_queue_full: 0,
    receive_error: 0,
  };
  private halfOpen = 0;
  private datagramsReceived = 0;
  private datagramsSent = 0;
  private bytesReceived = 0;
  private bytesSent = 0;
  private resetsSent = 0;
  private resetTokens = STATELESS_RESETS_PER_SECOND;
  private resetRefill = 0;
  private closed = false;
  private readonly cfg: SocketConfig;

  private constructor(
    private readonly sock: DatagramSocket,
    init: RudpSocketInit,
    private readonly aeadBackend: AeadBackend
  ) {
    super();
    this.clock = init.clock ?? systemClock;
    this.ledger = init.drops ?? new DropLedger({ clock: this.clock });
    this.drops = new DropCounter('transport.socket', this.ledger);
    this.driverDrops = new DropCounter('transport.driver', this.ledger);
    this.cfg = socketConfig(init);
    this.scheduler = new SocketScheduler(sock, this.clock, e => this.remove(e));
    if (!init.secret && !init.secrets) {
      const msg = 'no cluster secret configured: using the built-in development secret';
      // The logger is the caller's transport logger (it names its component itself).
      if (init.logger) init.logger.warn({}, msg);
      else process.emitWarning(msg, { code: 'MESHWIRE_DEV_SECRET' });
    }
    this.keyring = new ClusterKeyring(init.secrets ?? [init.secret ?? DEVELOPMENT_SECRET]);
    sock.onMessage((msg, from) => this.onDatagram(msg, from));
  }

  /** Binds a UDP socket (or wraps `init.socket`) and starts accepting connections. */
  // `override`: EventEmitter is a class, so TypeScript sees Function.prototype.bind here.
  static override async bind(init: RudpSocketInit = {}): Promise<RudpSocket> {
    validate(init);
    // before binding: a backend that cannot be had is a configuration error, not a leak
    const backend = selectAeadBackend(init.aead ?? DEFAULT_AEAD, init.aeadBackend);
    const sock =
      init.socket ??
      (await bindUdp(init.host ?? '127.0.0.1', init.port ?? 0, {
        driver: init.udpDriver,
        maxDatagramSize: init.maxDatagramSize ?? DEFAULT_MAX_DATAGRAM_SIZE,
      }));
    return new RudpSocket(sock, init, backend);
  }

  address(): { host: string; port: number } {
    return this.sock.address();
  }

  /**
   * Replaces the accepted cluster secrets (the first is sent with). Throws
   * InvalidArgumentError and keeps the old set when the new one is invalid. Live
   * connections keep their keys; new handshakes use the new set.
   */
  setSecrets(secrets: readonly Buffer[]): void {
    this.keyring.replace(secrets);
  }

  /** How many cluster secrets are accepted now. */
  get secretCount(): number {
    return this.keyring.size;
  }

  private engineInit(role: 'client' | 'server', keys: ClusterKeys): EngineInit {
    return {
      role,
      localCid: this.newCid(),
      clusterKeys: keys,
      keyring: this.keyring,
      aead: this.cfg.aead,
      aeadBackend: this.aeadBackend,
      params: {
        maxDatagramSize: this.cfg.maxDatagramSize,
        initialMaxData: this.cfg.receiveWindowBytes,
        idleTimeoutMs: this.cfg.idleTimeoutMs,
        maxAckDelayMs: this.cfg.maxAckDelayMs,
      },
      congestion: this.cfg.congestion,
      sendBufferBytes: this.cfg.sendBufferBytes,
      keepAliveMs: this.cfg.keepAliveMs,
      drops: this.ledger,
    };
  }

  private newCid(): Buffer {
    for (;;) {
      const cid = randomBytes(CID_LENGTH);
      if (!this.byCid.has(cid.toString('hex'))) return cid;
    }
  }

  /** Opens a connection; rejects with UnavailableError on timeout or a dead address. */
  connect(
    addr: { host: string; port: number },
    opts: ConnectOptions = {}
  ): Promise<RudpConnection> {
    if (this.closed) return Promise.reject(new UnavailableError('socket closed'));
    const timeoutMs = opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    // the error is created here so a timeout carries the caller's stack
    const timeoutErr = new UnavailableError(
      `connect to ${addr.host}:${addr.port} timed out after ${timeoutMs} ms (no handshake reply)`
    );
    return new Promise((resolve, reject) => {
      if (opts.signal?.aborted) {
        reject(new CancelledError('connect aborted'));
        return;
      }
      const remote = { address: addr.host, port: addr.port };
      let settled = false;
      let entry: Entry | null = null;
      const timer = this.clock.setTimer(timeoutMs, () => fail(timeoutErr));
      const onAbort = (): void => fail(new CancelledError('connect aborted'));
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const done = (): void => {
        settled = true;
        timer.cancel();
        opts.signal?.removeEventListener('abort', onAbort);
      };
      const fail = (err: Error): void => {
        if (settled) return;
        done();
        if (entry) {
          entry.onFailed = null;
          entry.engine.abort(1, 'connect failed', err, this.clock.now());
          this.scheduler.service(entry);
        }
        reject(err);
      };
      entry = this.createEntry('client', remote, null, 0, this.keyring.sending);
      entry.onEstablished = () => {
        if (settled || !entry) return;
        done();
        const conn = entry.conn as RudpConnection;
        // The caller attaches its listeners once the promise settles, a microtask away; a
        // CLOSE read in the same receive batch as the handshake (a peer closing its socket
        // as we connect) destroys the connection before that. Its 'error' must not crash
        // the process: the caller still sees it as `destroyed` and `errored`.
        conn.on('error', ignoreEarlyError);
        resolve(conn);
      };
      entry.onFailed = fail;
      this.scheduler.kick(entry);
    });
  }

  private createEntry(
    role: 'client' | 'server',
    remote: RemoteInfo,
    initial: InitialInfo | null,
    initialBytes: number,
    keys: ClusterKeys
  ): Entry {
    const init = this.engineInit(role, keys);
    const entry: Entry = {
      engine: null as unknown as RudpEngine, // set just below; events only fire after
      remote,
      conn: null,
      timer: null,
      timerAt: Infinity,
      initialKey: null,
      remoteCidKey: null,
      onEstablished: null,
      onFailed: null,
      immediateTurns: 0,
      readable: false,
      flushQueued: false,
      sentAtOnce: false,
    };
    const out = (parts: Buffer[], bytes: number): void => {
      this.datagramsSent++;
      this.bytesSent += bytes;
      this.sock.send(parts, remote.port, remote.address);
    };
    const host = {
      kick: () => this.scheduler.kick(entry),
      flushSoon: () => this.scheduler.flushSoon(entry),
      now: () => this.clock.now(),
    };
    const events = {
      onEstablished: () => {
        const conn = new RudpConnection(
          entry.engine,
          host,
          { host: remote.address, port: remote.port },
          this.cfg.highWaterMark
        );
        entry.conn = conn;
        if (entry.engine.remoteCid) {
          entry.remoteCidKey = entry.engine.remoteCid.toString('hex');
          this.byRemoteCid.set(entry.remoteCidKey, entry);
        }
        if (role === 'server') {
          this.halfOpen--;
          this.emit('connection', conn);
        } else {
          entry.onEstablished?.();
        }
      },
      // deferred to service(): one pull per I/O turn hands the reader a turn's packets at once
      onReadable: () => {
        entry.readable = true;
      },
      onWritable: () => entry.conn?.onWritable(),
      onClosed: (err: Error | null) => {
        if (entry.conn) entry.conn.onClosed(err);
        else entry.onFailed?.(err ?? new UnavailableError('connection closed during handshake'));
      },
    };
    const now = this.clock.now();
    if (role === 'client') {
      entry.engine = RudpEngine.client(init, out, events, now);
    } else {
      const info = initial as InitialInfo;
      entry.engine = RudpEngine.server(init, info, initialBytes, out, events, now);
      entry.initialKey = `${remote.address}|${remote.port}|${info.clientCid.toString('hex')}`;
      this.byInitial.set(entry.initialKey, entry);
      entry.remoteCidKey = info.clientCid.toString('hex');
      this.byRemoteCid.set(entry.remoteCidKey, entry);
      this.halfOpen++;
    }
    this.byCid.set(init.localCid.toString('hex'), entry);
    return entry;
  }

  private onDatagram(d: Buffer, from: RemoteInfo): void {
    this.datagramsReceived++;
    this.bytesReceived += d.length;
    if (this.closed) {
      this.drops.add('closed');
      return;
    }
    if (d.length > this.cfg.maxDatagramSize) {
      this.drops.add('oversized');
      return;
    }
    if (d.length < 1 + CID_LENGTH) {
      this.drops.add('malformed');
      return;
    }
    const now = this.clock.now();
    switch (d[0]) {
      case PacketType.Initial:
        this.onInitial(d, from);
        return;
      case PacketType.Handshake:
      case PacketType.Data: {
        const e = this.entryFor(d);
        if (!e) {
          this.drops.add('unknown_connection');
          if (d[0] === PacketType.Data) this.maybeReset(d, from, now);
          return;
        }
        e.engine.input(d, now);
        this.scheduler.kickReceived(e);
        return;
      }
      case PacketType.Reset: {
        const e = this.byRemoteCid.get(cidKey(d, 1));
        if (!e) {
          this.drops.add('unknown_connection');
          return;
        }
        e.engine.input(d, now);
        this.scheduler.kick(e);
        return;
      }
      default:
        this.drops.add('malformed');
    }
  }

  /**
   * The connection a DATA/HANDSHAKE datagram is for. Consecutive datagrams mostly belong
   * to one connection: compare the id with the last one's before formatting a map key.
   */
  private entryFor(d: Buffer): Entry | undefined {
    const last = this.lastEntry;
    if (last) {
      const cid = last.engine.localCid;
      let i = 0;
      while (i < CID_LENGTH && cid[i] === d[1 + i]) i++;
      if (i === CID_LENGTH) return last;
    }
    const entry = this.byCid.get(cidKey(d, 1));
    if (entry) this.lastEntry = entry;
    return entry;
  }

  private onInitial(d: Buffer, from: RemoteInfo): void {
    const opened = this.keyring.openInitial(d);
    if (opened === 'malformed' || opened === 'bad_auth') {
      this.drops.add(opened);
      return;
    }
    const info = opened.info;
    const key = `${from.address}|${from.port}|${info.clientCid.toString('hex')}`;
    const existing = this.byInitial.get(key);
    if (existing) {
      existing.engine.input(d, this.clock.now());
      this.scheduler.kick(existing);
      return;
    }
    if (info.version !== PROTOCOL_VERSION) {
      this.drops.add('version');
      return;
    }
    if (this.halfOpen >= MAX_HALF_OPEN_CONNECTIONS) {
      this.drops.add('half_open_limit');
      return;
    }
    if (this.byCid.size >= this.cfg.maxConnections) {
      this.drops.add('connection_limit');
      return;
    }
    const e = this.createEntry(
      'server',
      { address: from.address, port: from.port },
      info,
      d.length,
      opened.keys
    );
    this.acceptedBySecret[opened.index]++;
    this.scheduler.kick(e);
  }

  /** RFC 9000 §10.3: smaller than the packet that triggered it, and rate limited. */
  private maybeReset(d: Buffer, from: RemoteInfo, now: number): void {
    if (d.length <= RESET_LENGTH || d.length < DATA_HEADER_LENGTH + TAG_LENGTH) return;
    const refill = Math.floor((now - this.resetRefill) / 1000);
    if (refill > 0) {
      this.resetTokens = STATELESS_RESETS_PER_SECOND;
      this.resetRefill = now;
    }
    if (this.resetTokens <= 0) {
      this.drops.add('reset_rate_limited');
      return;
    }
    this.resetTokens--;
    this.resetsSent++;
    const reset = buildReset(this.keyring.sending, d.subarray(1, 1 + CID_LENGTH));
    this.datagramsSent++;
    this.bytesSent += reset.length;
    this.sock.send([reset], from.port, from.address);
  }

  private remove(e: Entry): void {
    if (this.lastEntry === e) this.lastEntry = null;
    this.scheduler.forget(e);
    const cid = e.engine.localCid.toString('hex');
    if (this.byCid.get(cid) === e) {
      this.byCid.delete(cid);
      if (e.engine.role === 'server' && e.conn === null) this.halfOpen--;
    }
    if (e.initialKey && this.byInitial.get(e.initialKey) === e) this.byInitial.delete(e.initialKey);
    if (e.remoteCidKey && this.byRemoteCid.get(e.remoteCidKey) === e)
      this.byRemoteCid.delete(e.remoteCidKey);
  }

  /**
   * Moves the driver's drop counts (kept in native code or the driver object, where a
   * datagram is lost) into the ledger: what rose since the last call, so they are logged
   * and outlive the driver like every other drop. Runs on stats() (every /metrics scrape)
   * and at close, not on a timer of its own.
   */
  private syncDriverDrops(driver: DriverStats | undefined): void {
    if (!driver) return;
    const seen = this.driverDropsSeen;
    const add = (reason: DriverDropReason, now: number): void => {
      if (now > seen[reason]) this.driverDrops.add(reason, now - seen[reason]);
      seen[reason] = now;
    };
    add('send_error', driver.sendErrors);
    add('send_queue_full', driver.sendQueueFull);
    add('receive_error', driver.receiveErrors);
  }

  stats(): SocketStats {
    const driver = this.sock.stats?.();
    this.syncDriverDrops(driver);
    // The ledger holds the drops of the socket, its driver and every connection, live or
    // closed.
    const drops = new DropCounter();
    for (const [r, n] of Object.entries(this.ledger.snapshot(SOCKET_DROP_COMPONENTS)))
      drops.add(r, n);
    return {
      connections: this.byCid.size,
      halfOpen: this.halfOpen,
      datagramsReceived: this.datagramsReceived,
      datagramsSent: this.datagramsSent,
      bytesReceived: this.bytesReceived,
      bytesSent: this.bytesSent,
      statelessResetsSent: this.resetsSent,
      clusterSecrets: this.keyring.size,
      handshakesAcceptedBySecret: this.acceptedBySecret.slice(0, this.keyring.size),
      aead: this.cfg.aead,
      aeadBackend: this.aeadBackend,
      udpDriver: this.sock.kind,
      drops: drops.snapshot(),
      ...(driver?.sendCalls !== undefined
        ? {
            udpCalls: {
              sendCalls: driver.sendCalls,
              receiveCalls: driver.receiveCalls ?? 0,
              gsoDatagrams: driver.gsoDatagrams ?? 0,
            },
          }
        : {}),
    };
  }

  /** Destroys every connection (each peer gets a CLOSE; use conn.close() first for a graceful end) and closes the socket. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.syncDriverDrops(this.sock.stats?.());
    for (const e of [...this.byCid.values()]) {
      if (e.conn && !e.conn.destroyed) {
        // 'close' without 'error' locally; the peer gets a CLOSE it reports as an error
        e.conn.abortQuietly(CloseCode.APPLICATION, 'socket closed');
      } else if (!e.engine.isClosed()) {
        e.engine.abort(
          CloseCode.APPLICATION,
          'socket closed',
          new UnavailableError('socket closed'),
          this.clock.now()
        );
      }
      this.remove(e);
    }
    this.closed = true;
    this.scheduler.close();
    await this.sock.close();
  }
}
/** The ledger components whose drops the socket reports (itself and its connections). */
const SOCKET_DROP_COMPONENTS = [
  'transport.socket',
  'transport.driver',
  'transport.connection',
] as const;

/** Datagrams the UDP driver lost: a failed send, a full send queue, a failed receive. */
type DriverDropReason = 'send_error' | 'send_queue_full' | 'receive_error';
