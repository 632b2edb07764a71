/**
 * The configuration keys of a node: the NodeConfig type and the key table (flag,
 * environment variable, kind, default) that loadConfig (config.ts), `meshwire serve
 * --help`, the Helm chart and the tests share (docs/design.md, "Configuration"): add
 * keys, never rename them.
 */
import type { Cidr, HostPort } from '../common';
import { AEAD_BACKEND_PREFERENCES, UDP_DRIVER_PREFERENCES } from '../transport';
import type { AeadBackendPreference, UdpDriverPreference } from '../transport';

/** The validated configuration of one node. */
export interface NodeConfig {
  /** This node's id; peers address it by this name. @default the hostname */
  nodeId: string;
  /** gRPC API listen address. @default 127.0.0.1:7400 */
  grpcListen: HostPort;
  /** UDP peer transport listen address. @default 127.0.0.1:7401 */
  peerListen: HostPort;
  /** Prometheus /metrics listen address. @default 127.0.0.1:9464 */
  metricsListen: HostPort;
  /** Static peers: id -> UDP addresses. @default {} */
  peers: Record<string, HostPort[]>;
  /** DNS name template for peers, with `{id}` and `{namespace}`. */
  peerDns?: string;
  /** Peer ids resolved through `peerDns` (this node's own id is skipped). @default [] */
  peerIds: string[];
  /** Namespace substituted for `{namespace}` in `peerDns`. @default default */
  namespace: string;
  /**
   * File holding the cluster secret, or a list of them (src/app/cluster-secrets.ts); none:
   * a development secret (with a warning), loopback only.
   */
  clusterSecretFile?: string;
  /** How long a stopping node lets in-flight work finish. @default 10000 */
  drainTimeoutMs: number;
  /** Largest payload accepted. @default 8388608 */
  maxMessageBytes: number;
  /** Default Request timeout when the caller sets neither timeout_ms nor a deadline. @default 30000 */
  requestTimeoutMs: number;
  /** Deliveries buffered per subscription when the client sets no buffer_size. @default 1024 */
  subscriberBufferSize: number;
  /** Transport congestion controller. @default bbr */
  congestionControl: 'bbr' | 'cubic' | 'newreno';
  /** Who runs the transport AEAD (same wire format either way). @default auto */
  aeadBackend: AeadBackendPreference;
  /** Largest UDP payload between nodes (path MTU minus IP and UDP headers). @default 1472 */
  maxDatagramSize: number;
  /** The peer transport's UDP driver (same wire either way). @default auto */
  udpDriver: UdpDriverPreference;
  /** pino log level. @default info */
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  tlsCertFile?: string;
  tlsKeyFile?: string;
  tlsClientCaFile?: string;
  authTokensFile?: string;
  /** Concurrent streaming calls per client (token name, else IP address). @default 1000 */
  maxStreamsPerClient?: number;
  /** Concurrent Subscribe calls per client. @default 1000 */
  maxSubscriptionsPerClient?: number;
  /** Requests awaiting a reply per client (Request and RequestStream). @default 100000 */
  maxInFlightPerClient?: number;
  /** Bytes of messages buffered for subscribers, node-wide. @default 1073741824 */
  memoryBudgetBytes?: number;
  /** Bytes of messages waiting per unresolved peer. @default 16777216 */
  unresolvedQueueBytes?: number;
  /** Whether Send/Request may name `target.address` (false: FAILED_PRECONDITION). @default true */
  addressTargets?: boolean;
  /** Senders for address targets outside the peer directory, at most. @default 256 */
  maxAddressSenders?: number;
  /** An address target's sender unused this long is retired. @default 60000 */
  addressSenderIdleMs?: number;
  /** Ranges `target.address` must fall in (PERMISSION_DENIED outside). @default any */
  addressTargetCidrs?: Cidr[];
  /** Directory of cluster secret files (a mounted Secret); instead of clusterSecretFile. */
  clusterSecretDir?: string;
  /** How long an accepted Send idempotency_key is remembered (ms). @default 120000 */
  idempotencyWindowMs?: number;
  /** Idempotency keys this node keeps as their owner, at most. @default 1000000 */
  idempotencyMaxKeys?: number;
}

export type Kind =
  | 'id'
  | 'listen'
  | 'peers'
  | 'dnsTemplate'
  | 'idList'
  | 'string'
  | 'file'
  /** A path to an existing directory. */
  | 'dir'
  | 'int'
  /** true or false. */
  | 'bool'
  /** Comma-separated CIDRs (IPv4 and IPv6), or a list of them in a file. */
  | 'cidrList'
  /** One of `choices`. */
  | 'choice';

export interface KeySpec {
  key: keyof NodeConfig;
  flag: string;
  env: string;
  kind: Kind;
  description: string;
  /** Default shown in --help and used when no source sets the key. */
  default?: string;
  min?: number;
  max?: number;
  choices?: readonly string[];
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
const CONGESTION = ['bbr', 'cubic', 'newreno'] as const;

/** Every configuration key, in --help order. */
export const CONFIG_KEYS: readonly KeySpec[] = [
  {
    key: 'nodeId',
    flag: '--node-id',
    env: 'MESHWIRE_NODE_ID',
    kind: 'id',
    description: 'this node id (peers address it by this name); default: the hostname',
  },
  {
    key: 'grpcListen',
    flag: '--grpc-listen',
    env: 'MESHWIRE_GRPC_LISTEN',
    kind: 'listen',
    description: 'gRPC API listen address host:port',
    default: '127.0.0.1:7400',
  },
  {
    key: 'peerListen',
    flag: '--peer-listen',
    env: 'MESHWIRE_PEER_LISTEN',
    kind: 'listen',
    description: 'UDP peer transport listen address host:port',
    default: '127.0.0.1:7401',
  },
  {
    key: 'metricsListen',
    flag: '--metrics-listen',
    env: 'MESHWIRE_METRICS_LISTEN',
    kind: 'listen',
    description: 'Prometheus /metrics listen address host:port',
    default: '127.0.0.1:9464',
  },
  {
    key: 'peers',
    flag: '--peers',
    env: 'MESHWIRE_PEERS',
    kind: 'peers',
    description:
      'static peers "id=host:port,id=host:port" (an id may repeat for several addresses)',
  },
  {
    key: 'peerDns',
    flag: '--peer-dns',
    env: 'MESHWIRE_PEER_DNS',
    kind: 'dnsTemplate',
    description:
      'DNS name template for peers, with {id} and {namespace}, e.g. {id}.meshwire-headless.{namespace}.svc.cluster.local',
  },
  {
    key: 'peerIds',
    flag: '--peer-ids',
    env: 'MESHWIRE_PEER_IDS',
    kind: 'idList',
    description:
      'comma-separated peer ids resolved through --peer-dns (this node skips its own id)',
  },
  {
    key: 'namespace',
    flag: '--namespace',
    env: 'MESHWIRE_NAMESPACE',
    kind: 'string',
    description: 'namespace substituted for {namespace} in --peer-dns',
    default: 'default',
  },
  {
    key: 'clusterSecretFile',
    flag: '--cluster-secret-file',
    env: 'MESHWIRE_CLUSTER_SECRET_FILE',
    kind: 'file',
    description:
      'file holding the cluster secret, or a list of them (first line "# meshwire cluster secrets", one per line, the first sends); reloaded on change and SIGHUP; none: a development secret and a warning (loopback peerListen only)',
  },
  {
    key: 'clusterSecretDir',
    flag: '--cluster-secret-dir',
    env: 'MESHWIRE_CLUSTER_SECRET_DIR',
    kind: 'dir',
    description:
      'directory of cluster secret files (e.g. a mounted Secret; sorted by name, the first sends), instead of --cluster-secret-file; reloaded on change and SIGHUP',
  },
  {
    key: 'drainTimeoutMs',
    flag: '--drain-timeout-ms',
    env: 'MESHWIRE_DRAIN_TIMEOUT_MS',
    kind: 'int',
    min: 0,
    max: 3_600_000,
    description: 'how long a stopping node lets in-flight work finish',
    default: '10000',
  },
  {
    key: 'maxMessageBytes',
    flag: '--max-message-bytes',
    env: 'MESHWIRE_MAX_MESSAGE_BYTES',
    kind: 'int',
    min: 1,
    max: 64 * 1024 * 1024,
    description: 'largest payload accepted, in bytes',
    default: '8388608',
  },
  {
    key: 'requestTimeoutMs',
    flag: '--request-timeout-ms',
    env: 'MESHWIRE_REQUEST_TIMEOUT_MS',
    kind: 'int',
    min: 1,
    max: 3_600_000,
    description: 'Request timeout when the caller sets none',
    default: '30000',
  },
  {
    key: 'subscriberBufferSize',
    flag: '--subscriber-buffer-size',
    env: 'MESHWIRE_SUBSCRIBER_BUFFER_SIZE',
    kind: 'int',
    min: 1,
    max: 1_000_000,
    description: 'deliveries buffered per subscription when the client sets no buffer_size',
    default: '1024',
  },
  {
    key: 'congestionControl',
    flag: '--congestion-control',
    env: 'MESHWIRE_CONGESTION_CONTROL',
    kind: 'choice',
    choices: CONGESTION,
    description: 'transport congestion controller: bbr, cubic or newreno',
    default: 'bbr',
  },
  {
    key: 'aeadBackend',
    flag: '--aead-backend',
    env: 'MESHWIRE_AEAD_BACKEND',
    kind: 'choice',
    choices: AEAD_BACKEND_PREFERENCES,
    description:
      'who runs the transport AEAD: auto (openssl when its native addon is built, else libsodium when sodium-native is installed), openssl, libsodium or node (node:crypto)',
    default: 'auto',
  },
  {
    key: 'udpDriver',
    flag: '--udp-driver',
    env: 'MESHWIRE_UDP_DRIVER',
    kind: 'choice',
    choices: UDP_DRIVER_PREFERENCES,
    description:
      "the peer transport's UDP driver: auto (batch when its native addon is built), batch (recvmmsg/sendmmsg) or dgram (node:dgram)",
    default: 'auto',
  },
  {
    key: 'maxDatagramSize',
    flag: '--max-datagram-size',
    env: 'MESHWIRE_MAX_DATAGRAM_SIZE',
    kind: 'int',
    min: 256,
    max: 65507,
    description:
      'largest UDP payload between nodes: path MTU - 28 (IPv4; - 48 for IPv6), e.g. 8972 on a 9000-byte jumbo-frame network; two nodes use the smaller of their values',
    default: '1472',
  },
  {
    key: 'logLevel',
    flag: '--log-level',
    env: 'MESHWIRE_LOG_LEVEL',
    kind: 'choice',
    choices: LOG_LEVELS,
    description: 'log level: trace, debug, info, warn, error, fatal or silent',
    default: 'info',
  },
  {
    key: 'tlsCertFile',
    flag: '--tls-cert-file',
    env: 'MESHWIRE_TLS_CERT_FILE',
    kind: 'file',
    description: 'PEM certificate for gRPC TLS; none: plaintext gRPC',
  },
  {
    key: 'tlsKeyFile',
    flag: '--tls-key-file',
    env: 'MESHWIRE_TLS_KEY_FILE',
    kind: 'file',
    description: 'PEM private key for gRPC TLS',
  },
  {
    key: 'tlsClientCaFile',
    flag: '--tls-client-ca-file',
    env: 'MESHWIRE_TLS_CLIENT_CA_FILE',
    kind: 'file',
    description: 'CA bundle for client certificates (mTLS); none: no client certificates asked',
  },
  {
    key: 'authTokensFile',
    flag: '--auth-tokens-file',
    env: 'MESHWIRE_AUTH_TOKENS_FILE',
    kind: 'file',
    description: 'tokens file: bearer tokens and client-certificate identities; none: auth off',
  },
  {
    key: 'maxStreamsPerClient',
    flag: '--max-streams-per-client',
    env: 'MESHWIRE_MAX_STREAMS_PER_CLIENT',
    kind: 'int',
    min: 1,
    max: 1_000_000,
    description: 'concurrent streaming calls per client (token name, else IP address)',
    default: '1000',
  },
  {
    key: 'maxSubscriptionsPerClient',
    flag: '--max-subscriptions-per-client',
    env: 'MESHWIRE_MAX_SUBSCRIPTIONS_PER_CLIENT',
    kind: 'int',
    min: 1,
    max: 1_000_000,
    description: 'concurrent Subscribe calls per client',
    default: '1000',
  },
  {
    key: 'maxInFlightPerClient',
    flag: '--max-in-flight-per-client',
    env: 'MESHWIRE_MAX_IN_FLIGHT_PER_CLIENT',
    kind: 'int',
    min: 1,
    max: 100_000_000,
    description: 'requests awaiting a reply per client (Request and RequestStream)',
    default: '100000',
  },
  {
    key: 'memoryBudgetBytes',
    flag: '--memory-budget-bytes',
    env: 'MESHWIRE_MEMORY_BUDGET_BYTES',
    kind: 'int',
    min: 1024,
    max: Number.MAX_SAFE_INTEGER,
    description:
      'bytes of messages buffered for subscribers, node-wide (publishers get RESOURCE_EXHAUSTED past it)',
    default: '1073741824',
  },
  {
    key: 'unresolvedQueueBytes',
    flag: '--unresolved-queue-bytes',
    env: 'MESHWIRE_UNRESOLVED_QUEUE_BYTES',
    kind: 'int',
    min: 1024,
    max: Number.MAX_SAFE_INTEGER,
    description:
      'bytes of messages waiting per peer that is not resolved yet (senders get RESOURCE_EXHAUSTED past it)',
    default: '16777216',
  },
  {
    key: 'addressTargets',
    flag: '--address-targets',
    env: 'MESHWIRE_ADDRESS_TARGETS',
    kind: 'bool',
    description:
      'whether Send and Request may name target.address (a UDP host:port); false: FAILED_PRECONDITION, use peer ids',
    default: 'true',
  },
  {
    key: 'maxAddressSenders',
    flag: '--max-address-senders',
    env: 'MESHWIRE_MAX_ADDRESS_SENDERS',
    kind: 'int',
    min: 1,
    max: 65_536,
    description:
      'senders for target.address outside the peer directory, at most (RESOURCE_EXHAUSTED past it)',
    default: '256',
  },
  {
    key: 'addressSenderIdleMs',
    flag: '--address-sender-idle-ms',
    env: 'MESHWIRE_ADDRESS_SENDER_IDLE_MS',
    kind: 'int',
    min: 100,
    max: 86_400_000,
    description:
      'a sender for target.address outside the peer directory is closed after this long unused (its queued messages are dropped)',
    default: '60000',
  },
  {
    key: 'addressTargetCidrs',
    flag: '--address-target-cidrs',
    env: 'MESHWIRE_ADDRESS_TARGET_CIDRS',
    kind: 'cidrList',
    description:
      'comma-separated CIDRs (IPv4 and IPv6) target.address must fall in (PERMISSION_DENIED outside; host names only when both 0.0.0.0/0 and ::/0 are listed)',
    default: '0.0.0.0/0,::/0',
  },
  {
    key: 'idempotencyWindowMs',
    flag: '--idempotency-window-ms',
    env: 'MESHWIRE_IDEMPOTENCY_WINDOW_MS',
    kind: 'int',
    min: 1000,
    max: 86_400_000,
    description:
      'how long a Send idempotency_key is remembered after its ack: a retry within it returns the original ack with duplicate true',
    default: '120000',
  },
  {
    key: 'idempotencyMaxKeys',
    flag: '--idempotency-max-keys',
    env: 'MESHWIRE_IDEMPOTENCY_MAX_KEYS',
    kind: 'int',
    min: 1,
    max: 100_000_000,
    description:
      'idempotency keys this node keeps as their owner, at most (new keys are RESOURCE_EXHAUSTED past it)',
    default: '1000000',
  },
];
