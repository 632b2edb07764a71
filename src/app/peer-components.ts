/**
 * The peer side of a node as components: the datagram socket, the reliable-UDP transport
 * over it, the static peers, the cluster, the DNS resolver and the node itself. Each
 * wraps a lower layer's object with the shared lifecycle (src/common/component.ts); the
 * order they start and stop in is in lifecycle.ts.
 */
import { isIP } from 'node:net';
import type { Clock, Component, DropLedger } from '../common';
import { formatHostPort, isMeshwireError } from '../common';
import { listenError } from '../api';
import type { Cluster } from '../dispatch';
import type { MeshNode } from '../node';
import type { PeerDirectory } from '../peers';
import { DnsResolver } from '../peers';
import type { Logger } from '../telemetry';
import type { DatagramSocket, RudpConnection } from '../transport';
import { DEVELOPMENT_SECRET, RudpSocket, bindUdp } from '../transport';
import type { NodeConfig } from './config-keys';
import { assertClusterSecret, peerSeeds } from './config';
import { SecretReloader, readClusterSecrets } from './cluster-secrets';

/** Where a datagram socket comes from: a factory, e.g. a VirtualNetwork socket in tests. */
export type DatagramSocketFactory = () => DatagramSocket | Promise<DatagramSocket>;

/**
 * Errors binding the peer side: our own (a bad secret, an AEAD backend this machine
 * lacks) say what is wrong; others are a ListenError naming peerListen.
 */
function peerListenError(cfg: NodeConfig, err: unknown): unknown {
  return isMeshwireError(err) ? err : listenError('peerListen', cfg.peerListen, err);
}

/**
 * The cluster secrets for reply tokens: the secret file or directory, or the development
 * secret without one. Secrets that cannot be read here fail the peer transport's start()
 * with the reason, where they are read again (and handed to the node, and reloaded).
 */
export function replySecret(cfg: NodeConfig): Buffer[] {
  try {
    return readClusterSecrets(cfg)?.secrets ?? [DEVELOPMENT_SECRET];
  } catch {
    return [DEVELOPMENT_SECRET];
  }
}

/** The UDP socket on peerListen (udpDriver), or the one a factory gives. */
export class DatagramComponent implements Component {
  readonly name = 'datagram socket';
  private socketValue: DatagramSocket | undefined;
  private closed: Promise<void> | undefined;

  constructor(
    private readonly config: NodeConfig,
    private readonly factory: DatagramSocketFactory | undefined
  ) {}

  /** The bound socket (after start()). */
  get socket(): DatagramSocket {
    if (!this.socketValue) throw new Error('DatagramComponent.socket before start()');
    return this.socketValue;
  }

  async start(): Promise<void> {
    const cfg = this.config;
    let sock: DatagramSocket;
    try {
      sock = this.factory
        ? await this.factory()
        : await bindUdp(cfg.peerListen.host, cfg.peerListen.port, {
            driver: cfg.udpDriver,
            maxDatagramSize: cfg.maxDatagramSize,
          });
    } catch (err) {
      throw peerListenError(cfg, err);
    }
    // The transport closes its socket when it closes: close once, whoever asks first.
    const close = sock.close.bind(sock);
    sock.close = () => (this.closed ??= close());
    this.socketValue = sock;
  }

  async stop(): Promise<void> {
    await this.socketValue?.close();
  }
}

/** The reliable-UDP transport over the datagram socket, with the cluster secret. */
export class PeerTransportComponent implements Component {
  readonly name = 'peer transport';
  private rudp: RudpSocket | undefined;
  private reloader: SecretReloader | undefined;

  constructor(
    private readonly init: {
      config: NodeConfig;
      datagram: DatagramComponent;
      node: () => MeshNode;
      clock?: Clock;
      logger: Logger;
      drops?: DropLedger;
      /** How often the cluster secret file or directory is checked. @default 5000 */
      reloadIntervalMs?: number;
    }
  ) {}

  /**
   * Reads the cluster secrets now (SIGHUP) and applies them if they changed; false when
   * nothing changed or the new set was refused (the reason is logged and counted).
   */
  reloadSecrets(): boolean {
    return this.reloader?.check() ?? false;
  }

  /** The transport (after start()). */
  get socket(): RudpSocket {
    if (!this.rudp) throw new Error('PeerTransportComponent.socket before start()');
    return this.rudp;
  }

  /** The bound address, or undefined before start(). */
  address(): { host: string; port: number } | undefined {
    return this.rudp?.address();
  }

  async start(): Promise<void> {
    const { config: cfg, logger: log } = this.init;
    let loaded: ReturnType<typeof readClusterSecrets>;
    try {
      assertClusterSecret(cfg);
      loaded = readClusterSecrets(cfg);
      this.rudp = await RudpSocket.bind({
        socket: this.init.datagram.socket,
        secrets: loaded?.secrets,
        congestion: cfg.congestionControl,
        aeadBackend: cfg.aeadBackend,
        maxDatagramSize: cfg.maxDatagramSize,
        udpDriver: cfg.udpDriver,
        idleTimeoutMs: 15_000,
        clock: this.init.clock,
        logger: log,
        drops: this.init.drops,
      });
    } catch (err) {
      throw peerListenError(cfg, err);
    }
    const rudp = this.rudp;
    const node = this.init.node();
    if (loaded) {
      node.setClusterSecrets(loaded.secrets);
      this.reloader = new SecretReloader({
        config: cfg,
        initial: loaded,
        apply: secrets => {
          rudp.setSecrets(secrets); // validates first: a refused set changes nothing
          node.setClusterSecrets(secrets);
        },
        log,
        intervalMs: this.init.reloadIntervalMs,
        clock: this.init.clock,
      }).start();
    }
    const st = this.rudp.stats();
    log.info(
      {
        peer_listen: formatHostPort(this.rudp.address()),
        aead: st.aead,
        aead_backend: st.aeadBackend,
        udp_driver: st.udpDriver,
        congestion: cfg.congestionControl,
        max_datagram_size: cfg.maxDatagramSize,
        cluster_secrets: st.clusterSecrets,
        cluster_secret_source: loaded?.source ?? 'development secret',
      },
      'peer transport bound'
    );
    const reloader = this.reloader;
    node.telemetry.transport.registerSocket({
      stats: () => ({
        ...rudp.stats(),
        ...(reloader
          ? { clusterSecretReloads: { ok: reloader.reloads, ...reloader.failures } }
          : {}),
      }),
    });
  }

  /** Per-peer transport figures on /metrics while the connection is open. */
  watch(conn: RudpConnection): RudpConnection {
    const node = this.init.node();
    const addr = formatHostPort(conn.remoteAddress);
    node.telemetry.transport.watchConnection(() => node.peerIdAt(addr), conn);
    return conn;
  }

  async stop(): Promise<void> {
    this.reloader?.stop();
    await this.rudp?.close();
  }
}

/** The peers a node starts with (config peers and peerDns ids) put in its directory. */
export class StaticPeersComponent implements Component {
  readonly name = 'static peers';

  constructor(
    private readonly config: NodeConfig,
    private readonly directory: PeerDirectory
  ) {}

  start(): Promise<void> {
    for (const seed of peerSeeds(this.config)) {
      const existing = this.directory.get(seed.id);
      if (isIP(seed.host) !== 0) {
        const addrs = [...(existing?.addresses ?? []), { host: seed.host, port: seed.port }];
        this.directory.put(seed.id, addrs, seed.source);
      } else {
        // A name: the DNS resolver fills in the addresses (and keeps them fresh).
        this.directory.put(seed.id, existing?.addresses ?? [], seed.source, {
          name: seed.host,
          port: seed.port,
        });
      }
    }
    return Promise.resolve();
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }
}

/** The cluster: accepts the transport's connections; dials through it. */
export class ClusterComponent implements Component {
  readonly name = 'cluster';

  constructor(
    readonly cluster: Cluster,
    private readonly transport: PeerTransportComponent
  ) {}

  start(): Promise<void> {
    const transport = this.transport;
    transport.socket.on('connection', (c: RudpConnection) =>
      this.cluster.accept(transport.watch(c))
    );
    return Promise.resolve();
  }

  /** The node drained the cluster (MeshNode.drain); this closes it after a failed start. */
  stop(): Promise<void> {
    this.cluster.close();
    return Promise.resolve();
  }
}

/** Keeps DNS-named peers' addresses fresh. */
export class DnsComponent implements Component {
  readonly name = 'dns resolver';
  private readonly resolver: DnsResolver;

  constructor(
    directory: PeerDirectory,
    init: { servers?: string[]; intervalMs?: number; clock?: Clock }
  ) {
    this.resolver = new DnsResolver(directory, init);
  }

  start(): Promise<void> {
    this.resolver.start();
    return Promise.resolve();
  }

  stop(): Promise<void> {
    this.resolver.stop();
    return Promise.resolve();
  }
}

/** The node: drains in beforeStop() (the result is `drained`). */
export class NodeComponent implements Component {
  readonly name = 'node';
  /** Whether in-flight work finished within the drain timeout (after beforeStop()). */
  drained = true;

  constructor(readonly node: MeshNode) {}

  start(): Promise<void> {
    return Promise.resolve();
  }

  async beforeStop(): Promise<void> {
    this.drained = (await this.node.drain()).drained;
  }

  /** Nothing left after beforeStop(); after a failed start, stops at once. */
  async stop(): Promise<void> {
    await this.node.drain(0);
  }
}
