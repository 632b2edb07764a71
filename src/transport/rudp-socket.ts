/**
 * The socket actor: one datagram socket per node, datagrams
 * demultiplexed by destination connection id to one engine per connection. It owns the
 * timers (the engines never do): each engine is ticked at its nextDeadline() and, batched
 * per I/O turn, after input or application writes.
 *
 * Unknown ids: a valid INITIAL opens a connection; a DATA packet for an unknown id is
 * answered with a stateless reset (rate limited) so a peer of a restarted node fails
 * fast; anything else is dropped and counted.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { systemClock } from '../common';
import type { Clock, Timer } from '../common';
import { DropCounter, DropLedger } from '../common';
import { CancelledError, InvalidArgumentError, UnavailableError } from '../common';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_ACK_DELAY_MS,
  DEFAULT_MAX_DATAGRAM_SIZE,
  DEFAULT_RECEIVE_WINDOW_BYTES,
  DEFAULT_SEND_BUFFER_BYTES,
  DEVELOPMENT_SECRET,
  MAX_CONNECTIONS,
  MAX_HALF_OPEN_CONNECTIONS,
  MIN_DATAGRAM_SIZE,
  PROTOCOL_VERSION,
  STATELESS_RESETS_PER_SECOND,
} from './constants';
import type { CongestionAlgorithm } from './congestion';
import type { DatagramSocket, RemoteInfo } from './datagram-socket';
import { CloseCode, RudpEngine } from './engine';
import type { EngineInit } from './engine';
import {
  AEAD_BACKEND_PREFERENCES,
  ClusterKeys,
  DEFAULT_AEAD,
  buildReset,
  parseInitial,
  selectAeadBackend,
} from './packet-protection';
import type { AeadAlgorithm, AeadBackend, AeadBackendPreference } from './packet-protection';
import { RudpConnection } from './rudp-connection';
import { bindUdp } from './udp-binding';
import type { UdpDriverPreference } from './udp-binding';
import {
  CID_LENGTH,
  DATA_HEADER_LENGTH,
  PacketType,
  RESET_LENGTH,
  TAG_LENGTH,
  cidKey,
} from './wire';

/** Minimal logger (pino-compatible) for the development-secret warning. */
export interface TransportLogger {
  warn(obj: object, msg: string): void;
}

export interface RudpSocketInit {
  /** @default '127.0.0.1' */
  host?: string;
  /** @default 0 (any free port) */
  port?: number;
  /** Cluster secret; without one a built-in development secret is used and a warning logged. */
  secret?: Buffer;
  /** @default 'bbr' */
  congestion?: CongestionAlgorithm;
  /** Close a connection after this long without a packet (0 = never). @default 30000 */
  idleTimeoutMs?: number;
  /** PING after this long without sending (0 = off). @default idleTimeoutMs / 3 */
  keepAliveMs?: number;
  /** Largest UDP payload. @default 1472 */
  maxDatagramSize?: number;
  /** Flow-control window per connection (bytes). @default 8 MiB */
  receiveWindowBytes?: number;
  /** Unacknowledged bytes per connection before write() waits. @default 8 MiB */
  sendBufferBytes?: number;
  /** Duplex highWaterMark. @default 1 MiB */
  highWaterMark?: number;
  /** @default 'chacha20-poly1305' */
  aead?: AeadAlgorithm;
  /**
   * Which implementation runs the AEAD (same wire format either way): `openssl` needs our
   * addon (make build), `libsodium` the optional package sodium-native. @default 'auto'
   */
  aeadBackend?: AeadBackendPreference;
  /**
   * The real UDP driver: `batch` (recvmmsg/sendmmsg through meshwire's native addon),
   * `dgram` (node:dgram), or `auto` (batch when the addon is built). @default 'auto'
   */
  udpDriver?: UdpDriverPreference;
  /** @default 2 */
  maxAckDelayMs?: number;
  /** @default 4096 */
  maxConnections?: number;
  /** Use this datagram socket (e.g. a VirtualSocket) instead of binding a UDP socket. */
  socket?: DatagramSocket;
  clock?: Clock;
  logger?: TransportLogger;
  /**
   * Where the socket's and its connections' drops are recorded (totals, debug logs).
   * @default a ledger of its own
   */
  drops?: DropLedger;
}

export interface ConnectOptions {
  /** @default 5000 */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** The ledger components whose drops the socket reports (itself and its connections). */
const SOCKET_DROP_COMPONENTS = ['transport.socket', 'transport.connection'] as const;

export type SocketDropReason =
  | 'unknown_connection'
  | 'malformed'
  | 'bad_auth'
  | 'oversized'
  | 'version'
  | 'half_open_limit'
  | 'connection_limit'
  | 'reset_rate_limited'
  | 'closed';

export interface SocketStats {
  connections: number;
  halfOpen: number;
  datagramsReceived: number;
  datagramsSent: number;
  bytesReceived: number;
  bytesSent: number;
  statelessResetsSent: number;
  /** The AEAD and the implementation that runs it. */
  aead: AeadAlgorithm;
  aeadBackend: AeadBackend;
  /** The datagram driver: 'batch', 'dgram' or 'virtual'. */
  udpDriver: string;
  /** Socket-level drops plus the drops of every connection (live and closed). */
  drops: Record<string, number>;
}

interface Entry {
  engine: RudpEngine;
  remote: RemoteInfo;
  conn: RudpConnection | null;
  timer: Timer | null;
  timerAt: number;
  initialKey: string | null;
  remoteCidKey: string | null;
  onEstablished: (() => void) | null;
  onFailed: ((err: Error) => void) | null;
  immediateTurns: number;
  /** The engine has bytes (or the end) for the reader; delivered in service(). */
  readable: boolean;
  /** A flushSoon() microtask is pending. */
  flushQueued: boolean;
  /** A write was already sent at once in this run of JavaScript (flushSoon). */
  sentAtOnce: boolean;
}

/** Consecutive next-turn ticks of one connection before a 1 ms timer is forced. */
const MAX_IMMEDIATE_TURNS = 1000;

/** See connect(): errors are reported to the connection's own listeners as well. */
function ignoreEarlyError(): void {}

export class RudpSocket extends EventEmitter {
  private readonly clock: Clock;
  private readonly keys: ClusterKeys;
  private readonly byCid = new Map<string, Entry>();
  private readonly byInitial = new Map<string, Entry>();
  private readonly byRemoteCid = new Map<string, Entry>();
  private readonly dirty = new Set<Entry>();
  private lastEntry: Entry | null = null;
  private immediate: NodeJS.Immediate | null = null;
  /** Connections with received datagrams, ticked in a microtask (batch driver only). */
  private readonly received = new Set<Entry>();
  private receivedQueued = false;
  private readonly ledger: DropLedger;
  private readonly drops: DropCounter<SocketDropReason>;
  private halfOpen = 0;
  private datagramsReceived = 0;
  private datagramsSent = 0;
  private bytesReceived = 0;
  private bytesSent = 0;
  private resetsSent = 0;
  private resetTokens = STATELESS_RESETS_PER_SECOND;
  private resetRefill = 0;
  private closed = false;
  private readonly cfg: Required<
    Pick<
      RudpSocketInit,
      | 'congestion'
      | 'idleTimeoutMs'
      | 'keepAliveMs'
      | 'maxDatagramSize'
      | 'receiveWindowBytes'
      | 'sendBufferBytes'
      | 'highWaterMark'
      | 'aead'
      | 'maxAckDelayMs'
      | 'maxConnections'
    >
  >;

  private constructor(
    private readonly sock: DatagramSocket,
    init: RudpSocketInit,
    private readonly aeadBackend: AeadBackend
  ) {
    super();
    this.clock = init.clock ?? systemClock;
    this.ledger = init.drops ?? new DropLedger({ clock: this.clock });
    this.drops = new DropCounter('transport.socket', this.ledger);
    const idle = init.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.cfg = {
      congestion: init.congestion ?? 'bbr',
      idleTimeoutMs: idle,
      keepAliveMs: init.keepAliveMs ?? (idle > 0 ? idle / 3 : 0),
      maxDatagramSize: init.maxDatagramSize ?? DEFAULT_MAX_DATAGRAM_SIZE,
      receiveWindowBytes: init.receiveWindowBytes ?? DEFAULT_RECEIVE_WINDOW_BYTES,
      sendBufferBytes: init.sendBufferBytes ?? DEFAULT_SEND_BUFFER_BYTES,
      highWaterMark: init.highWaterMark ?? 1024 * 1024,
      aead: init.aead ?? DEFAULT_AEAD,
      maxAckDelayMs: init.maxAckDelayMs ?? DEFAULT_MAX_ACK_DELAY_MS,
      maxConnections: init.maxConnections ?? MAX_CONNECTIONS,
    };
    if (!init.secret) {
      const msg = 'no cluster secret configured: using the built-in development secret';
      // The logger is the caller's transport logger (it names its component itself).
      if (init.logger) init.logger.warn({}, msg);
      else process.emitWarning(msg, { code: 'MESHWIRE_DEV_SECRET' });
    }
    this.keys = new ClusterKeys(init.secret ?? DEVELOPMENT_SECRET);
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

  private engineInit(role: 'client' | 'server'): EngineInit {
    return {
      role,
      localCid: this.newCid(),
      clusterKeys: this.keys,
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
          this.service(entry);
        }
        reject(err);
      };
      entry = this.createEntry('client', remote, null, 0);
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
      this.kick(entry);
    });
  }

  private createEntry(
    role: 'client' | 'server',
    remote: RemoteInfo,
    initial: ReturnType<typeof parseInitial> | null,
    initialBytes: number
  ): Entry {
    const init = this.engineInit(role);
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
      kick: () => this.kick(entry),
      flushSoon: () => this.flushSoon(entry),
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
      const info = initial as Exclude<ReturnType<typeof parseInitial>, string>;
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
        this.kickReceived(e);
        return;
      }
      case PacketType.Reset: {
        const e = this.byRemoteCid.get(cidKey(d, 1));
        if (!e) {
          this.drops.add('unknown_connection');
          return;
        }
        e.engine.input(d, now);
        this.kick(e);
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
    const info = parseInitial(this.keys, d);
    if (info === 'malformed' || info === 'bad_auth') {
      this.drops.add(info);
      return;
    }
    const key = `${from.address}|${from.port}|${info.clientCid.toString('hex')}`;
    const existing = this.byInitial.get(key);
    if (existing) {
      existing.engine.input(d, this.clock.now());
      this.kick(existing);
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
      d.length
    );
    this.kick(e);
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
    const reset = buildReset(this.keys, d.subarray(1, 1 + CID_LENGTH));
    this.datagramsSent++;
    this.bytesSent += reset.length;
    this.sock.send([reset], from.port, from.address);
  }

  /** Schedules a tick of `e` at the end of this I/O turn (batches input and writes). */
  private kick(e: Entry): void {
    this.dirty.add(e);
    if (!this.immediate) this.immediate = setImmediate(() => this.runDirty());
  }

  /**
   * A datagram arrived for `e`. On the batch driver every datagram of one recvmmsg batch
   * is handed over in one callback, so a microtask still ticks the connection once per
   * batch, and a lone packet is read at once instead of a loop phase later. Other drivers
   * deliver one datagram per callback: the end of the I/O turn batches them (kick).
   */
  private kickReceived(e: Entry): void {
    if (this.sock.kind !== 'batch') {
      this.kick(e);
      return;
    }
    this.received.add(e);
    if (this.receivedQueued) return;
    this.receivedQueued = true;
    queueMicrotask(this.runReceived);
  }

  private readonly runReceived = (): void => {
    this.receivedQueued = false;
    if (this.closed) return;
    const list = [...this.received];
    this.received.clear();
    for (const e of list) {
      // already queued for the end of the turn: that tick reads it
      if (!this.dirty.has(e)) this.service(e);
    }
  };

  /**
   * Application writes. The first write of a run of JavaScript on an established
   * connection is packetized and handed to the driver at once, inside write(): a lone
   * request does not wait behind the microtasks queued before it. Further writes of the
   * same run share one tick in a microtask (they leave in the same event-loop turn; a
   * setImmediate costs a whole loop iteration, tens of microseconds per hop).
   */
  private flushSoon(e: Entry): void {
    if (e.flushQueued || this.dirty.has(e)) return;
    if (!e.sentAtOnce && !this.closed && e.engine.state === 'established') {
      e.sentAtOnce = true;
      queueMicrotask(() => (e.sentAtOnce = false));
      this.tickAndArm(e);
      return;
    }
    e.flushQueued = true;
    queueMicrotask(() => {
      e.flushQueued = false;
      // already ticked by an immediate meanwhile, or the socket closed: nothing to do
      if (!this.dirty.has(e) && !this.closed) this.service(e);
    });
  }

  private runDirty(): void {
    this.immediate = null;
    const list = [...this.dirty];
    this.dirty.clear();
    for (const e of list) this.service(e);
  }

  /** Hands the reader what arrived, ticks the engine and re-arms its timer. */
  private service(e: Entry): void {
    if (e.readable) {
      e.readable = false;
      e.conn?.onReadable();
    }
    this.tickAndArm(e);
  }

  /** Ticks an engine and re-arms its timer at nextDeadline(). */
  private tickAndArm(e: Entry): void {
    const now = this.clock.now();
    e.engine.tick(now);
    if (e.engine.state === 'closed') {
      this.remove(e);
      return;
    }
    const at = e.engine.nextDeadline();
    if (at === Infinity) return;
    if (at <= now) {
      // Work to do now: next turn. A guard against an engine that never makes progress:
      // after many immediate turns in a row, fall back to a 1 ms timer (bounded CPU).
      if (++e.immediateTurns < MAX_IMMEDIATE_TURNS) {
        this.kick(e);
        return;
      }
      e.immediateTurns = 0;
    } else {
      e.immediateTurns = 0;
    }
    // Sub-millisecond deadlines (pacing) wait for a 1 ms timer rather than spinning on
    // setImmediate: the pacer's burst allowance (PACING_BURST_MS) covers the wait, and the
    // CPU goes to the receive path instead.
    if (e.timer && e.timerAt <= at) return;
    e.timer?.cancel();
    e.timerAt = at;
    e.timer = this.clock.setTimer(Math.max(1, at - now), () => {
      e.timer = null;
      e.timerAt = Infinity;
      this.service(e);
    });
  }

  private remove(e: Entry): void {
    if (this.lastEntry === e) this.lastEntry = null;
    e.timer?.cancel();
    e.timer = null;
    this.dirty.delete(e);
    this.received.delete(e);
    const cid = e.engine.localCid.toString('hex');
    if (this.byCid.get(cid) === e) {
      this.byCid.delete(cid);
      if (e.engine.role === 'server' && e.conn === null) this.halfOpen--;
    }
    if (e.initialKey && this.byInitial.get(e.initialKey) === e) this.byInitial.delete(e.initialKey);
    if (e.remoteCidKey && this.byRemoteCid.get(e.remoteCidKey) === e)
      this.byRemoteCid.delete(e.remoteCidKey);
  }

  stats(): SocketStats {
    // The ledger holds the drops of the socket and of every connection, live or closed.
    const drops = new DropCounter();
    for (const [r, n] of Object.entries(this.ledger.snapshot(SOCKET_DROP_COMPONENTS)))
      drops.add(r, n);
    const driver = this.sock.stats?.();
    if (driver) {
      if (driver.sendErrors) drops.add('send_error', driver.sendErrors);
      if (driver.sendQueueFull) drops.add('send_queue_full', driver.sendQueueFull);
      if (driver.receiveErrors) drops.add('receive_error', driver.receiveErrors);
    }
    return {
      connections: this.byCid.size,
      halfOpen: this.halfOpen,
      datagramsReceived: this.datagramsReceived,
      datagramsSent: this.datagramsSent,
      bytesReceived: this.bytesReceived,
      bytesSent: this.bytesSent,
      statelessResetsSent: this.resetsSent,
      aead: this.cfg.aead,
      aeadBackend: this.aeadBackend,
      udpDriver: this.sock.kind,
      drops: drops.snapshot(),
    };
  }

  /** Destroys every connection (each peer gets a CLOSE; use conn.close() first for a graceful end) and closes the socket. */
  async close(): Promise<void> {
    if (this.closed) return;
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
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = null;
    await this.sock.close();
  }
}

function validate(init: RudpSocketInit): void {
  const mds = init.maxDatagramSize;
  if (mds !== undefined && (!Number.isInteger(mds) || mds < MIN_DATAGRAM_SIZE || mds > 65507)) {
    throw new InvalidArgumentError(
      `maxDatagramSize must be an integer in [${MIN_DATAGRAM_SIZE}, 65507]`
    );
  }
  const nonNeg = [
    'idleTimeoutMs',
    'keepAliveMs',
    'receiveWindowBytes',
    'sendBufferBytes',
    'maxAckDelayMs',
  ] as const;
  for (const k of nonNeg) {
    const v = init[k];
    if (v !== undefined && !(typeof v === 'number' && v >= 0 && Number.isFinite(v))) {
      throw new InvalidArgumentError(`${k} must be a finite number >= 0`);
    }
  }
  if (init.secret !== undefined && init.secret.length < 16) {
    throw new InvalidArgumentError('secret must be at least 16 bytes');
  }
  if (init.congestion !== undefined && !['bbr', 'cubic', 'newreno'].includes(init.congestion)) {
    throw new InvalidArgumentError("congestion must be 'bbr', 'cubic' or 'newreno'");
  }
  const backend = init.aeadBackend;
  if (backend !== undefined && !AEAD_BACKEND_PREFERENCES.includes(backend)) {
    throw new InvalidArgumentError(
      `aeadBackend must be one of ${AEAD_BACKEND_PREFERENCES.join(', ')}`
    );
  }
}
