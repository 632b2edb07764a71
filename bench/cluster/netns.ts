/**
 * The lossy network of the cluster benchmark: a network namespace (`mwbc<pid>`) whose
 * loopback is set up like a real link (MTU 1500, no TSO/GSO/GRO, so every datagram and
 * TCP segment is a packet of its own), and nftables rules that drop a share of the packets
 * between the meshwire nodes' UDP peer ports and of the NATS server's TCP traffic, counting
 * what they see and what they drop. Only inter-node UDP and NATS TCP are touched: gRPC
 * between clients and nodes is not.
 */
import { execFileSync } from 'node:child_process';
import { systemTool } from '../common/system-tool';

const TABLE = 'mwbc';

function sh(cmd: string, argv: string[], input?: string): string {
  return execFileSync(systemTool(cmd), argv, {
    input,
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
    timeout: 10_000,
  });
}

/** Why the lossy runs cannot be made here, or undefined when they can. */
export function lossUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return 'not root (network namespaces and nftables need root)';
  }
  for (const tool of ['ip', 'nft', 'ethtool']) {
    try {
      if (!systemTool(tool).startsWith('/')) throw new Error(`${tool} not found`);
    } catch {
      return `${tool} not installed (iproute2, nftables, ethtool)`;
    }
  }
  return undefined;
}

/** Creates namespace `name` with loopback up, MTU 1500, offloads off. Replaces a stale one. */
export function createNamespace(name: string): void {
  try {
    sh('ip', ['netns', 'del', name]);
  } catch {
    // none yet
  }
  sh('ip', ['netns', 'add', name]);
  sh('ip', ['-n', name, 'link', 'set', 'lo', 'mtu', '1500', 'up']);
  sh('ip', [
    'netns',
    'exec',
    name,
    'ethtool',
    '-K',
    'lo',
    'tso',
    'off',
    'gso',
    'off',
    'gro',
    'off',
    // a GSO send of the batch driver (native/udp_batch.c) is cut into datagrams at the
    // device, as a NIC would, so the input hook below sees every datagram
    'tx-udp-segmentation',
    'off',
  ]);
}

/**
 * Kills the processes still in namespace `name` (ours: the run's nodes, servers and clients,
 * should a phase die without stopping them), then deletes it. Never throws.
 */
export function deleteNamespace(name: string): string | undefined {
  try {
    const pids = sh('ip', ['netns', 'pids', name])
      .split(/\s+/)
      .filter(Boolean)
      .map(Number)
      .filter(p => Number.isInteger(p) && p > 1 && p !== process.pid);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  } catch {
    // no such namespace, or no pids
  }
  try {
    sh('ip', ['netns', 'del', name]);
    return undefined;
  } catch (e) {
    return `could not delete network namespace ${name}: ${String(e)}`;
  }
}

export interface LossPorts {
  /** The meshwire nodes' UDP peer ports: datagrams between any two of them are lossy. */
  udpPeerPorts: readonly number[];
  /** The NATS server's client port: TCP segments to and from it are lossy (none without it). */
  natsPort?: number;
}

/**
 * The nftables ruleset (pure): on the input hook (every loopback packet passes it once,
 * after GSO segmentation, unlike the output hook, which sees a GSO run as one packet),
 * count the packets of each kind, then drop `perMille`/1000 of them at random.
 */
export function lossRuleset(ports: LossPorts, perMille: number): string {
  if (!Number.isInteger(perMille) || perMille < 0 || perMille > 1000) {
    throw new Error(`perMille ${perMille}: an integer from 0 to 1000 expected`);
  }
  const udp = `{ ${ports.udpPeerPorts.join(', ')} }`;
  const drop = `numgen random mod 1000 < ${perMille} counter drop`;
  return [
    `table inet ${TABLE} {`,
    '  chain in {',
    '    type filter hook input priority 0; policy accept;',
    `    udp sport ${udp} udp dport ${udp} counter comment "meshwire_seen"`,
    `    udp sport ${udp} udp dport ${udp} ${drop} comment "meshwire_dropped"`,
    ...(ports.natsPort === undefined
      ? []
      : [
          `    tcp dport ${ports.natsPort} counter comment "nats_seen"`,
          `    tcp sport ${ports.natsPort} counter comment "nats_seen"`,
          `    tcp dport ${ports.natsPort} ${drop} comment "nats_dropped"`,
          `    tcp sport ${ports.natsPort} ${drop} comment "nats_dropped"`,
        ]),
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Installs the loss rules in the current network namespace (call from inside it). */
export function installLossRules(ports: LossPorts, perMille: number): void {
  sh('nft', ['-f', '-'], lossRuleset(ports, perMille));
}

/** Packet counts by rule comment (`meshwire_seen`, `nats_dropped`, ...), summed. */
export function parseCounters(nftJson: string): Record<string, number> {
  const doc = JSON.parse(nftJson) as { nftables?: unknown[] };
  const out: Record<string, number> = {};
  for (const item of doc.nftables ?? []) {
    const rule = (item as { rule?: { comment?: string; expr?: unknown[] } }).rule;
    if (!rule?.comment) continue;
    for (const e of rule.expr ?? []) {
      const c = (e as { counter?: { packets?: number } }).counter;
      if (c && typeof c.packets === 'number') {
        out[rule.comment] = (out[rule.comment] ?? 0) + c.packets;
      }
    }
  }
  return out;
}

/** The counters of the loss rules in the current namespace. */
export function readCounters(): Record<string, number> {
  return parseCounters(sh('nft', ['-j', 'list', 'table', 'inet', TABLE]));
}
