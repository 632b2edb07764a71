/**
 * The API contract, driven from outside JavaScript: test/python/contract.py (grpcio, from
 * Debian's /usr/bin/python3) against three `meshwire serve` processes with static peers.
 * Every check it prints is asserted here; after the whole battery every node still
 * serves and its resident memory is within 50 MB of where it started.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { PYTHON, pythonStubs } from '../../helpers/python';
import { freePorts } from '../../helpers/ports';
import type { NodeProcess } from '../../helpers/processes';
import { listenFlags, spawnNode } from '../../helpers/processes';
import { waitFor } from '../../helpers/wait';

const SCRIPT = join(__dirname, '..', '..', '..', '..', 'test', 'python', 'contract.py');

/** Resident set size of a process, in MB (Linux /proc). */
function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

interface Check {
  check: string;
  ok: boolean;
  detail: string;
}

test('the proto contract from a Python client against three node processes', async t => {
  t.timeout(300_000);
  t.true(existsSync(PYTHON), 'Debian python3 with python3-grpcio (scripts/apt-deps.sh)');
  const stubs = pythonStubs();
  const ports = await freePorts(9);
  const ids = ['node-a', 'node-b', 'node-c'];
  const peers = ids.map((id, i) => `${id}=127.0.0.1:${ports[3 * i + 1]}`).join(',');
  const nodes: NodeProcess[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      nodes.push(
        await spawnNode(ids[i], [
          ...listenFlags(ports[3 * i], ports[3 * i + 1], ports[3 * i + 2]),
          '--peers',
          peers,
        ])
      );
    }
    const rssBefore = nodes.map(n => rssMb(n.proc.pid as number));
    const args = [SCRIPT, stubs, ...nodes.map(n => n.grpc), ...ids];
    const out = await new Promise<string>((resolve, reject) => {
      const py = spawn(PYTHON, args);
      let stdout = '';
      let stderr = '';
      py.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      py.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => py.kill('SIGKILL'), 200_000);
      py.on('exit', code => {
        clearTimeout(timer);
        if (code === 0) resolve(stdout);
        else {
          const logs = nodes.map(n => n.output().slice(-3000)).join('\n');
          reject(
            new Error(`contract.py exited ${code}\n${stdout}\n${stderr.slice(-4000)}\n${logs}`)
          );
        }
      });
    });
    const lines = out
      .trim()
      .split('\n')
      .map(l => JSON.parse(l) as Check | { done: number });
    const checks = lines.filter((l): l is Check => 'check' in l);
    const done = lines.find((l): l is { done: number } => 'done' in l);
    t.is(done?.done, checks.length, 'the script ran to its end');
    t.true(checks.length >= 40, `${checks.length} checks`);
    for (const c of checks) t.true(c.ok, `${c.check}: ${c.detail}`);
    t.log(`${checks.filter(c => c.ok).length} of ${checks.length} contract checks passed`);
    // Memory a burst of large requests used is returned when V8's memory reducer runs on
    // an idle node (seconds later): wait for it, bounded.
    let rssAfter: number[] = [];
    const samples: string[] = [];
    const settled = (): boolean => {
      rssAfter = nodes.map(n => rssMb(n.proc.pid as number));
      const sample = rssAfter.map(r => r.toFixed(0)).join('/');
      if (samples[samples.length - 1] !== sample) samples.push(sample);
      return rssAfter.every((r, k) => r - rssBefore[k] < 50);
    };
    // Asserted below, node by node.
    await waitFor('RSS back within 50 MB', settled, 90_000).catch(() => undefined);
    t.log(`RSS while settling: ${samples.join(' ')}`);
    for (let i = 0; i < 3; i++) {
      t.true(
        rssAfter[i] - rssBefore[i] < 50,
        `${ids[i]} RSS ${rssBefore[i].toFixed(0)} -> ${rssAfter[i].toFixed(0)} MB`
      );
      t.is(nodes[i].proc.exitCode, null, `${ids[i]} is still running`);
    }
    t.log(
      `RSS before ${rssBefore.map(r => r.toFixed(0)).join('/')} MB, after ${rssAfter.map(r => r.toFixed(0)).join('/')} MB`
    );
  } finally {
    await Promise.all(nodes.map(n => n.kill()));
  }
});
