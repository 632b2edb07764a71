/**
 * A stand-in for a Kubernetes cluster network, for the chart's StatefulSet: one Linux
 * network namespace per pod (each with its own IP, so every node binds the chart's real
 * ports), a switch namespace with a bridge and a dnsmasq that serves the headless
 * Service's per-pod records (<pod>.<headless>.<namespace>.svc.cluster.local), and a client
 * namespace for the helm test driver. `ip netns exec` makes /etc/netns/<ns>/resolv.conf
 * the pod's resolver, as the kubelet does with cluster DNS. Needs root, iproute2 and
 * dnsmasq (Debian's dnsmasq-base). Everything is created under unique names and removed
 * by `stop()`.
 */
import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { K8sObject } from './chart-helpers';
import { ROOT, find, materializePod } from './chart-helpers';

const CLI = join(ROOT, 'dist/src/cli/main.js');

export interface PodProcess {
  name: string;
  ip: string;
  fqdn: string;
  netns: string;
  proc: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface NetnsCluster {
  pods: PodProcess[];
  /** A scratch directory removed by stop(). */
  root: string;
  clientNetns: string;
  /** Runs `node <script>` in the client namespace; resolves with its exit code and output. */
  runClient(
    script: string,
    env: Record<string, string>,
    limitMs: number
  ): Promise<{ code: number | null; out: string }>;
  /** Kills what is left and removes the namespaces, veths and resolver files. */
  stop(): Promise<void>;
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Starts every replica of the rendered StatefulSet in its own network namespace. */
export function startNetnsCluster(objects: K8sObject[], namespace: string): NetnsCluster {
  const sts = find(objects, 'StatefulSet');
  const replicas = sts.spec.replicas as number;
  const headless = sts.spec.serviceName as string;
  const tag = randomBytes(3).toString('hex');
  const subnet = `10.${200 + (parseInt(tag.slice(0, 2), 16) % 50)}.${parseInt(tag.slice(2, 4), 16)}`;
  const sw = `mwk-sw-${tag}`;
  const client = `mwk-c-${tag}`;
  const created: string[] = [];
  const etcDirs: string[] = [];
  const root = mkdtempSync(join(tmpdir(), 'meshwire-netns-'));
  const procs: ChildProcess[] = [];
  const pods: PodProcess[] = [];

  const stop = async (): Promise<void> => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await Promise.all(
      procs.map(p =>
        p.exitCode === null && p.signalCode === null ? new Promise(r => p.once('exit', r)) : null
      )
    );
    for (const ns of created.reverse()) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // already gone
      }
    }
    for (const d of etcDirs) rmSync(d, { recursive: true, force: true });
    rmSync(root, { recursive: true, force: true });
  };

  try {
    ip('netns', 'add', sw);
    created.push(sw);
    ip('-n', sw, 'link', 'set', 'lo', 'up');
    ip('-n', sw, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', sw, 'addr', 'add', `${subnet}.1/24`, 'dev', 'br0');
    ip('-n', sw, 'link', 'set', 'br0', 'up');

    const attach = (ns: string, addr: string, i: number): void => {
      ip('netns', 'add', ns);
      created.push(ns);
      const a = `mwk${tag}a${i}`;
      const b = `mwk${tag}b${i}`;
      ip('link', 'add', a, 'type', 'veth', 'peer', 'name', b);
      ip('link', 'set', a, 'netns', sw);
      ip('link', 'set', b, 'netns', ns);
      ip('-n', sw, 'link', 'set', a, 'master', 'br0');
      ip('-n', sw, 'link', 'set', a, 'up');
      ip('-n', ns, 'link', 'set', b, 'name', 'eth0');
      ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0');
      ip('-n', ns, 'link', 'set', 'eth0', 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      // Cluster DNS for this "pod": the dnsmasq on the switch.
      const etc = `/etc/netns/${ns}`;
      mkdirSync(etc, { recursive: true });
      etcDirs.push(etc);
      writeFileSync(
        join(etc, 'resolv.conf'),
        `nameserver ${subnet}.1\noptions ndots:1 attempts:2 timeout:1\n`
      );
      writeFileSync(join(etc, 'hosts'), '127.0.0.1 localhost\n');
    };

    const records: string[] = [];
    for (let i = 0; i < replicas; i++) {
      const name = `${sts.metadata.name as string}-${i}`;
      records.push(
        `--host-record=${name}.${headless}.${namespace}.svc.cluster.local,${subnet}.${10 + i}`
      );
    }
    const dns = spawn(
      'ip',
      [
        'netns',
        'exec',
        sw,
        'dnsmasq',
        '--keep-in-foreground',
        '--conf-file=/dev/null',
        '--no-resolv',
        '--no-hosts',
        '--bind-interfaces',
        `--listen-address=${subnet}.1`,
        '--user=root',
        `--pid-file=${join(root, 'dnsmasq.pid')}`,
        ...records,
      ],
      { stdio: 'ignore' }
    );
    procs.push(dns);

    attach(client, `${subnet}.100`, 100);
    for (let i = 0; i < replicas; i++) {
      const ns = `mwk-p${i}-${tag}`;
      const addr = `${subnet}.${10 + i}`;
      attach(ns, addr, i);
      const podRoot = join(root, `pod-${i}`);
      const view = materializePod(objects, i, namespace, podRoot);
      let out = '';
      const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, CLI, 'serve'], {
        cwd: podRoot,
        env: { PATH: process.env.PATH, ...view.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      proc.stdout?.on('data', d => (out += String(d)));
      proc.stderr?.on('data', d => (out += String(d)));
      procs.push(proc);
      pods.push({
        name: view.podName,
        ip: addr,
        fqdn: `${view.podName}.${headless}.${namespace}.svc.cluster.local`,
        netns: ns,
        proc,
        output: () => out,
        exited: new Promise(resolve =>
          proc.once('exit', (code, signal) => resolve({ code, signal }))
        ),
      });
    }
  } catch (err) {
    void stop();
    throw err;
  }

  const runClient = (
    script: string,
    env: Record<string, string>,
    limitMs: number
  ): Promise<{ code: number | null; out: string }> => {
    const proc = spawn('ip', ['netns', 'exec', client, process.execPath, script], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    procs.push(proc);
    let out = '';
    proc.stdout?.on('data', d => (out += String(d)));
    proc.stderr?.on('data', d => (out += String(d)));
    const timer = setTimeout(() => proc.kill('SIGKILL'), limitMs);
    return new Promise(resolve =>
      proc.once('exit', code => {
        clearTimeout(timer);
        resolve({ code, out });
      })
    );
  };

  return { pods, root, clientNetns: client, runClient, stop };
}
