/**
 * Node configuration: flags > environment (MESHWIRE_*) > config file (YAML or JSON) >
 * defaults, validated at start. A bad value stops the node with one line naming the key,
 * the value, where it came from and what is allowed.
 *
 * The key table (config-keys.ts) is the contract shared with the CLI (`--help`), the Helm
 * chart and the tests (docs/design.md, "Configuration"): add keys, never rename them.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { Command, CommanderError, Option } from 'commander';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { HostPort } from '../common';
import {
  formatHostPort,
  InvalidArgumentError,
  isLoopbackHost,
  parseCidrList,
  parseHostPort,
} from '../common';
import type { KeySpec, NodeConfig } from './config-keys';
import { CONFIG_KEYS } from './config-keys';

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
    case 'dir': {
      const path = z.string().min(1).parse(raw);
      if (!existsSync(path) || !statSync(path).isDirectory())
        throw new InvalidArgumentError('not an existing directory');
      return path;
    }
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
      case 'dir':
        return 'a path to an existing directory';
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
  if (cfg.clusterSecretFile !== undefined && cfg.clusterSecretDir !== undefined) {
    throw new InvalidArgumentError(
      'invalid config: clusterSecretFile and clusterSecretDir are both set: use one (a file listing several secrets, or a directory of secret files)'
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
  cfg: Pick<NodeConfig, 'peerListen' | 'clusterSecretFile' | 'clusterSecretDir'>
): void {
  if (
    cfg.clusterSecretFile !== undefined ||
    cfg.clusterSecretDir !== undefined ||
    isLoopbackHost(cfg.peerListen.host)
  )
    return;
  throw new InvalidArgumentError(
    `invalid config: clusterSecretFile is not set and peerListen = ${show(formatHostPort(cfg.peerListen))} is not a loopback address: set clusterSecretFile (--cluster-secret-file, MESHWIRE_CLUSTER_SECRET_FILE) to a file holding the cluster secret (or clusterSecretDir to a directory of them); the built-in development secret is refused off loopback`
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
