/**
 * Node configuration: flags > environment (MESHWIRE_*) > config file (YAML or JSON) >
 * defaults, validated at start. A bad value stops the node with one line naming the key,
 * the value, where it came from and what is allowed.
 *
 * The key table below is the contract shared with the CLI (`--help`), the Helm chart and
 * the tests (docs/design.md, "Configuration"): add keys, never rename them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { Command, CommanderError, Option } from 'commander';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { Cidr, HostPort } from '../common';
import {
  formatHostPort,
  InvalidArgumentError,
  isLoopbackHost,
  parseCidrList,
  parseHostPort,
} from '../common';
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
  /** File holding the cluster secret; none: a development secret (with a warning), loopback only. */
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
}

type Kind =
  | 'id'
  | 'listen'
  | 'peers'
  | 'dnsTemplate'
  | 'idList'
  | 'string'
  | 'file'
  | 'int'
  /** true or false. */
  | 'bool'
  /** Comma-separated CIDRs (IPv4 and IPv6), or a list of them in a file. */
  | 'cidrList'
  /** One of `choices`. */
  | 'choice';

interface KeySpec {
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
      'file holding the cluster secret; none: a development secret and a warning (loopback peerListen only)',
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
    description: 'bearer tokens file; none: auth off',
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
];

const CONFIG_FILE_FLAG = '--config';
const CONFIG_FILE_ENV = 'MESHWIRE_CONFIG';

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

type Source = 'flag' | 'env' | 'file' | 'default';

/** Where a value came from, for error messages. */
function describeSource(spec: KeySpec, source: Source, file?: string): string {
  switch (source) {
    case 'flag':
      return spec.flag;
    case 'env':
      return spec.env;
    case 'file':
      return `config file ${file ?? ''}`.trim();
    default:
      return 'default';
  }
}

function show(value: unknown): string {
  return typeof value === 'string'
    ? JSON.stringify(value)
    : (JSON.stringify(value) ?? String(value));
}

/** One-line configuration error: key, value, source and what is allowed. */
function configError(
  spec: KeySpec,
  value: unknown,
  source: string,
  allowed: string
): InvalidArgumentError {
  return new InvalidArgumentError(
    `invalid config: ${spec.key} = ${show(value)} (from ${source}): ${allowed}`
  );
}

function parseIdList(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (typeof value === 'string') {
    return value
      .split(',')
      .map(s => s.trim())
      .filter(s => s.length > 0);
  }
  return [value];
}

/** Accepts "id=host:port,..." or, from a file, {id: "host:port" | ["host:port", ...]}. */
function parsePeers(value: unknown, what: string): Record<string, HostPort[]> {
  const out: Record<string, HostPort[]> = {};
  const add = (id: string, addr: string): void => {
    if (!ID_RE.test(id)) {
      throw new InvalidArgumentError(`peer id "${id}" must match ${ID_RE.source}`);
    }
    (out[id] ??= []).push(parseHostPort(addr, `${what} address of ${id}`));
  };
  if (typeof value === 'string') {
    for (const entry of value
      .split(',')
      .map(s => s.trim())
      .filter(Boolean)) {
      const eq = entry.indexOf('=');
      if (eq <= 0) throw new InvalidArgumentError(`entry "${entry}" is not "id=host:port"`);
      add(entry.slice(0, eq).trim(), entry.slice(eq + 1).trim());
    }
    return out;
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [id, addrs] of Object.entries(value)) {
      const list: unknown[] = Array.isArray(addrs) ? addrs : [addrs];
      for (const a of list) {
        if (typeof a !== 'string')
          throw new InvalidArgumentError(`address of ${id} must be a string`);
        add(id, a);
      }
    }
    return out;
  }
  throw new InvalidArgumentError('expected "id=host:port,..." or a map of id to addresses');
}

function fileCheck(path: string): string {
  if (!existsSync(path)) throw new InvalidArgumentError('file does not exist');
  return path;
}

/** Validates one raw value for its key; returns the typed value. */
function convert(spec: KeySpec, raw: unknown): unknown {
  switch (spec.kind) {
    case 'id':
      return z.string().regex(ID_RE, `must match ${ID_RE.source}`).parse(raw);
    case 'string':
      return z.string().min(1).max(253).parse(raw);
    case 'listen':
      return parseHostPort(z.string().parse(raw), spec.key, true);
    case 'peers':
      return parsePeers(raw, spec.key);
    case 'dnsTemplate': {
      const t = z.string().min(1).parse(raw);
      if (!t.includes('{id}')) throw new InvalidArgumentError('must contain {id}');
      return t;
    }
    case 'idList':
      return z
        .array(z.string().regex(ID_RE, `ids must match ${ID_RE.source}`))
        .parse(parseIdList(raw));
    case 'file':
      return fileCheck(z.string().min(1).parse(raw));
    case 'int': {
      const n = typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw;
      return z
        .number({ invalid_type_error: 'must be an integer' })
        .int('must be an integer')
        .min(spec.min ?? 0)
        .max(spec.max ?? Number.MAX_SAFE_INTEGER)
        .parse(n);
    }
    case 'bool': {
      if (raw === true || raw === 'true') return true;
      if (raw === false || raw === 'false') return false;
      throw new InvalidArgumentError('not a boolean');
    }
    case 'cidrList': {
      if (typeof raw !== 'string' && !Array.isArray(raw)) {
        throw new InvalidArgumentError('not a list of CIDRs');
      }
      const list = parseCidrList(raw as string | string[]);
      if (list.length === 0) {
        throw new InvalidArgumentError(
          'the list is empty (to refuse every address target, set addressTargets to false)'
        );
      }
      return list;
    }
    case 'choice': {
      const choices = spec.choices ?? [];
      const v = z.string().parse(raw);
      if (!choices.includes(v)) throw new InvalidArgumentError(`unknown value '${v}'`);
      return v;
    }
  }
}

function allowedText(spec: KeySpec, err: unknown): string {
  const rule = (() => {
    switch (spec.kind) {
      case 'int':
        return `an integer from ${spec.min ?? 0} to ${spec.max ?? Number.MAX_SAFE_INTEGER}`;
      case 'choice':
        return `one of ${(spec.choices ?? []).join(', ')}`;
      case 'listen':
        return 'an address "host:port" (IPv6 as "[::1]:port")';
      case 'id':
        return `an id matching ${ID_RE.source}`;
      case 'idList':
        return `comma-separated ids matching ${ID_RE.source}`;
      case 'peers':
        return '"id=host:port,id=host:port"';
      case 'dnsTemplate':
        return 'a DNS name template containing {id}';
      case 'file':
        return 'a path to an existing file';
      case 'string':
        return 'a non-empty string';
      case 'bool':
        return 'true or false';
      case 'cidrList':
        return 'comma-separated CIDRs such as "10.0.0.0/8,fd00::/8" (a bare address is a /32 or /128)';
    }
  })();
  let why = '';
  if (err instanceof z.ZodError) why = err.issues[0]?.message ?? '';
  else if (err instanceof Error) why = err.message;
  return why ? `${why}; allowed: ${rule}` : `allowed: ${rule}`;
}

/** Adds every configuration flag (and --config) to a commander command, for serve and --help. */
export function addConfigOptions(cmd: Command): Command {
  cmd.addOption(
    new Option(`${CONFIG_FILE_FLAG} <file>`, `YAML or JSON config file (env ${CONFIG_FILE_ENV})`)
  );
  for (const spec of CONFIG_KEYS) {
    // Defaults are shown, not applied here: environment and file must be able to win.
    const shown = spec.default !== undefined ? ` (default: "${spec.default}")` : '';
    cmd.addOption(
      new Option(`${spec.flag} <value>`, `${spec.description}${shown} (env ${spec.env})`)
    );
  }
  return cmd;
}

function flagToAttr(flag: string): string {
  return flag.replace(/^--/, '').replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

export interface LoadConfigOptions {
  /** Command-line flags only (no program name, no subcommand), e.g. ['--node-id', 'a']. */
  argv?: string[];
  /** Environment; only MESHWIRE_* keys are read. @default process.env */
  env?: Record<string, string | undefined>;
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(
      `invalid config: config file ${show(path)}: cannot be read (${(err as Error).message})`
    );
  }
  let data: unknown;
  try {
    data = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new InvalidArgumentError(
      `invalid config: config file ${show(path)} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`
    );
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new InvalidArgumentError(
      `invalid config: config file ${show(path)} must hold a map of keys`
    );
  }
  const known = new Set(CONFIG_KEYS.map(k => k.key as string));
  for (const key of Object.keys(data)) {
    if (!known.has(key)) {
      throw new InvalidArgumentError(
        `invalid config: unknown key ${show(key)} in config file ${show(path)}; known keys: ${[...known].join(', ')}`
      );
    }
  }
  return data as Record<string, unknown>;
}

/** Parses flags with commander (errors become one-line InvalidArgumentErrors). */
function parseFlags(argv: string[]): Record<string, string | undefined> {
  const cmd = addConfigOptions(new Command('serve'))
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, writeOut: () => undefined })
    .allowExcessArguments(false);
  try {
    cmd.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      throw new InvalidArgumentError(`invalid config: ${err.message.replace(/^error: /, '')}`);
    }
    throw err;
  }
  return cmd.opts<Record<string, string | undefined>>();
}

/**
 * Loads and validates the configuration. Throws InvalidArgumentError whose message is one
 * line naming the key, the value, its source and what is allowed.
 */
export function loadConfig(opts: LoadConfigOptions = {}): NodeConfig {
  const env = opts.env ?? process.env;
  const flags = parseFlags(opts.argv ?? []);
  const filePath = flags[flagToAttr(CONFIG_FILE_FLAG)] ?? env[CONFIG_FILE_ENV];
  const file = filePath ? readConfigFile(filePath) : {};

  const out: Record<string, unknown> = {};
  for (const spec of CONFIG_KEYS) {
    let raw: unknown;
    let source: Source = 'default';
    const flagValue = flags[flagToAttr(spec.flag)];
    const envValue = env[spec.env];
    if (flagValue !== undefined) {
      raw = flagValue;
      source = 'flag';
    } else if (envValue !== undefined && envValue !== '') {
      raw = envValue;
      source = 'env';
    } else if (file[spec.key] !== undefined) {
      raw = file[spec.key];
      source = 'file';
    } else if (spec.default !== undefined) {
      raw = spec.default;
    } else if (spec.key === 'nodeId') {
      raw = hostname();
    } else {
      continue;
    }
    try {
      out[spec.key] = convert(spec, raw);
    } catch (err) {
      throw configError(spec, raw, describeSource(spec, source, filePath), allowedText(spec, err));
    }
  }
  out.peers ??= {};
  out.peerIds ??= [];
  const cfg = out as unknown as NodeConfig;
  if ((cfg.tlsCertFile === undefined) !== (cfg.tlsKeyFile === undefined)) {
    throw new InvalidArgumentError(
      'invalid config: tlsCertFile and tlsKeyFile must be set together (both for TLS, neither for plaintext)'
    );
  }
  if (cfg.tlsClientCaFile !== undefined && cfg.tlsCertFile === undefined) {
    throw new InvalidArgumentError(
      'invalid config: tlsClientCaFile (mTLS) needs tlsCertFile and tlsKeyFile (TLS) as well'
    );
  }
  assertClusterSecret(cfg);
  if (cfg.peerIds.length > 0 && cfg.peerDns === undefined) {
    throw new InvalidArgumentError(
      `invalid config: peerIds = ${show(cfg.peerIds.join(','))} needs peerDns (a DNS template with {id}) to resolve them`
    );
  }
  return cfg;
}

/**
 * The built-in development secret is for loopback only: any meshwire process that reaches
 * a node's UDP port with it joins the cluster and can claim any node id. Throws
 * InvalidArgumentError (one line naming clusterSecretFile) when peerListen is not a
 * loopback address and no cluster secret is set.
 */
export function assertClusterSecret(
  cfg: Pick<NodeConfig, 'peerListen' | 'clusterSecretFile'>
): void {
  if (cfg.clusterSecretFile !== undefined || isLoopbackHost(cfg.peerListen.host)) return;
  throw new InvalidArgumentError(
    `invalid config: clusterSecretFile is not set and peerListen = ${show(formatHostPort(cfg.peerListen))} is not a loopback address: set clusterSecretFile (--cluster-secret-file, MESHWIRE_CLUSTER_SECRET_FILE) to a file holding the cluster secret; the built-in development secret is refused off loopback`
  );
}

/** A peer to look for at start: a static address or a DNS name to resolve. */
export interface PeerSeed {
  id: string;
  host: string;
  port: number;
  source: 'static' | 'dns';
}

/** Expands a peerDns template for one id. */
export function expandPeerDns(template: string, id: string, namespace: string): string {
  return template.replaceAll('{id}', id).replaceAll('{namespace}', namespace);
}

/** The peers this node starts with: static ones, then DNS-templated ids (never itself). */
export function peerSeeds(cfg: NodeConfig): PeerSeed[] {
  const seeds: PeerSeed[] = [];
  for (const [id, addrs] of Object.entries(cfg.peers)) {
    if (id === cfg.nodeId) continue;
    for (const a of addrs) seeds.push({ id, host: a.host, port: a.port, source: 'static' });
  }
  if (cfg.peerDns) {
    for (const id of cfg.peerIds) {
      if (id === cfg.nodeId || cfg.peers[id]) continue;
      seeds.push({
        id,
        host: expandPeerDns(cfg.peerDns, id, cfg.namespace),
        port: cfg.peerListen.port,
        source: 'dns',
      });
    }
  }
  return seeds;
}
