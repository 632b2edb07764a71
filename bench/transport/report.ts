/**
 * Reads the JSON lines of a transport benchmark run (bench/transport/run.sh) and writes
 * bench/results/transport.json and the transport section of docs/benchmarks.md.
 * Usage: node report.js <results.jsonl> <repoRoot> [udp_syscalls output]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';

interface Line {
  scenario: string;
  role: 'send' | 'recv';
  kind: string;
  bytes: number;
  seconds: number;
  cpuSeconds: number;
  stats?: {
    retransmittedBytes: number;
    streamBytesSent: number;
    srttMs: number;
    lostPackets: number;
    packetsSent: number;
  };
  error?: string;
  rep?: number;
  /** What the process itself reported it ran on (bench/transport/peer.ts). */
  udpDriver?: string;
  aeadBackend?: string;
  machine?: { cpuModel: string; cores: number; kernel: string; node: string };
  /** meshwire: the driver's system calls over the measured window. */
  udp?: {
    datagramsPerSendCall: number;
    datagramsPerReceiveCall: number;
    gsoDatagrams: number;
    datagramsSent: number;
  };
}

const [file, root, syscallsFile] = process.argv.slice(2);
/** bench/transport/udp_syscalls.c's output in the same namespace, when it ran. */
let syscalls = '';
try {
  syscalls = syscallsFile ? readFileSync(syscallsFile, 'utf8').trim() : '';
} catch {
  // not measured: the section says so
}
const lines = readFileSync(file, 'utf8')
  .split('\n')
  .filter(l => l.startsWith('{'))
  .map(l => JSON.parse(l) as Line);
const MiB = 1024 * 1024;
const figures: Record<string, number> = {};
const ratios: Record<string, number> = {};
const rows: string[] = [];
const rate = (l: Line): number => (l.seconds > 0 ? l.bytes / l.seconds : 0);
/** Receiver lines of a scenario's repetitions, slowest first. */
const runsOf = (scenario: string): Line[] =>
  lines.filter(l => l.scenario === scenario && l.role === 'recv').sort((a, b) => rate(a) - rate(b));
/** The median repetition (by receiver goodput) and its sender line. */
const get = (scenario: string, role: string): Line | undefined => {
  const runs = runsOf(scenario);
  const median = runs[Math.floor((runs.length - 1) / 2)];
  if (!median || role === 'recv') return median;
  return lines.find(l => l.scenario === scenario && l.role === role && l.rep === median.rep);
};
/** "min-max" goodput over the repetitions, MiB/s. */
const spread = (scenario: string): string => {
  const runs = runsOf(scenario);
  if (runs.length < 2) return '';
  return `${(rate(runs[0]) / MiB).toFixed(0)}-${(rate(runs[runs.length - 1]) / MiB).toFixed(0)}`;
};
const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;

/**
 * "driver/AEAD" each side of a scenario reported, over every repetition (e.g.
 * `batch/openssl`; two values joined by "+" if repetitions differed): read from the
 * processes, not assumed from the options.
 */
const processes: Record<string, Record<string, string>> = {};
function stackOfScenario(scenario: string): string {
  const side = (role: string): string => {
    const seen = new Set(
      lines
        .filter(l => l.scenario === scenario && l.role === role)
        .map(l => `${l.udpDriver ?? 'unreported'}/${l.aeadBackend ?? 'unreported'}`)
    );
    return [...seen].join('+') || 'n/a';
  };
  const send = side('send');
  const recv = side('recv');
  processes[scenario] = { send, recv };
  return send === recv ? send : `send ${send}, recv ${recv}`;
}
const machines = new Set(
  lines
    .filter(l => l.machine)
    .map(
      l =>
        `${l.machine!.cpuModel}, ${l.machine!.cores} cores, Linux ${l.machine!.kernel}, Node ${l.machine!.node}`
    )
);
const machine = [...machines].join(' + ') || 'unreported';

const udp = get('udp_raw.loss0', 'recv');
const udpSpread = spread('udp_raw.loss0');
if (udp && udp.seconds > 0) figures['udp_raw.payload_mib_s'] = round(udp.bytes / MiB / udp.seconds);
const udpJumbo = get('udp_raw.jumbo', 'recv');
if (udpJumbo && udpJumbo.seconds > 0)
  figures['udp_raw.payload_mib_s.jumbo'] = round(udpJumbo.bytes / MiB / udpJumbo.seconds);
for (const kind of ['meshwire', 'meshwire_dgram', 'tcp']) {
  for (const loss of ['loss0', 'loss1', 'loss5', 'jumbo']) {
    const r = get(`${kind}.${loss}`, 'recv');
    const s = get(`${kind}.${loss}`, 'send');
    if (!r || r.seconds <= 0) continue;
    const goodput = r.bytes / MiB / r.seconds;
    figures[`${kind}.goodput_mib_s.${loss}`] = round(goodput);
    const cpu = (r.cpuSeconds + (s?.cpuSeconds ?? 0)) / (r.bytes / MiB);
    figures[`${kind}.cpu_ms_per_mib.${loss}`] = round(cpu * 1000, 3);
    if (loss === 'loss0') figures[`${kind}.cpu_s_per_gib`] = round(cpu * 1024, 3);
    let retx = '';
    if (s?.stats && s.stats.streamBytesSent > 0) {
      const ratio = s.stats.retransmittedBytes / s.stats.streamBytesSent;
      figures[`${kind}.retransmission_ratio.${loss}`] = round(ratio, 4);
      retx = ratio.toFixed(4);
    }
    const calls = (
      l: Line | undefined,
      which: 'datagramsPerSendCall' | 'datagramsPerReceiveCall'
    ): string => (l?.udp ? String(l.udp[which]) : 'n/a');
    // datagrams per send call on the sender, per receive call on the receiver (the data
    // direction), and the share of the sender's datagrams that left in GSO runs
    const batches = s?.udp
      ? `${calls(s, 'datagramsPerSendCall')} / ${calls(r, 'datagramsPerReceiveCall')}` +
        (s.udp.datagramsSent > 0
          ? ` (GSO ${Math.round((100 * s.udp.gsoDatagrams) / s.udp.datagramsSent)}%)`
          : '')
      : 'n/a';
    if (s?.udp) {
      figures[`${kind}.datagrams_per_send_call.${loss}`] = s.udp.datagramsPerSendCall;
      if (r.udp)
        figures[`${kind}.datagrams_per_receive_call.${loss}`] = r.udp.datagramsPerReceiveCall;
    }
    rows.push(
      `| ${kind} | ${loss} | ${goodput.toFixed(1)} | ${spread(`${kind}.${loss}`)} | ${(cpu * 1000).toFixed(2)} | ${retx || 'n/a'} | ${stackOfScenario(`${kind}.${loss}`)} | ${batches} |`
    );
  }
}
const m0 = figures['meshwire.goodput_mib_s.loss0'];
if (m0 && figures['udp_raw.payload_mib_s'])
  ratios['meshwire_vs_udp_raw.loss0'] = round(m0 / figures['udp_raw.payload_mib_s'], 3);
const md = figures['meshwire_dgram.goodput_mib_s.loss0'];
if (md && figures['udp_raw.payload_mib_s'])
  ratios['meshwire_dgram_vs_udp_raw.loss0'] = round(md / figures['udp_raw.payload_mib_s'], 3);
if (md && m0) ratios['meshwire_batch_vs_dgram.loss0'] = round(m0 / md, 3);
const mj = figures['meshwire.goodput_mib_s.jumbo'];
if (mj && figures['udp_raw.payload_mib_s.jumbo'])
  ratios['meshwire_vs_udp_raw.jumbo'] = round(mj / figures['udp_raw.payload_mib_s.jumbo'], 3);
stackOfScenario('udp_raw.loss0');
stackOfScenario('udp_raw.jumbo');
for (const loss of ['loss1', 'loss5']) {
  const m = figures[`meshwire.goodput_mib_s.${loss}`];
  const tcp0 = figures['tcp.goodput_mib_s.loss0'];
  const tcp = figures[`tcp.goodput_mib_s.${loss}`];
  if (m && m0) ratios[`meshwire.keep.${loss}`] = round(m / m0, 3);
  if (tcp && tcp0) ratios[`tcp.keep.${loss}`] = round(tcp / tcp0, 3);
}
for (const loss of ['loss0', 'loss1', 'loss5']) {
  const m = figures[`meshwire.goodput_mib_s.${loss}`];
  const tcp = figures[`tcp.goodput_mib_s.${loss}`];
  if (m && tcp) ratios[`meshwire_vs_tcp.${loss}`] = round(m / tcp, 3);
}
writeFileSync(
  join(root, 'bench/results/transport.json'),
  JSON.stringify(
    {
      figures,
      ratios,
      meta: {
        command: 'make bench-transport',
        date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
        machine: [...machines],
        // UDP driver / AEAD backend each process reported, by scenario and side
        processes,
        load_average: loadavg().map(x => round(x, 1)),
      },
    },
    null,
    2
  ) + '\n'
);

const section = [
  `Measured ${new Date().toISOString().slice(0, 16)}Z by \`make bench-transport\` (bench/transport/run.sh) on ${machine}: two Node`,
  'processes in a network namespace (`lo` MTU 1500, TSO/GSO/GRO and tx-udp-segmentation off), one connection, 256 MiB or 10 s;',
  'loss made by nftables `numgen random mod 1000 < N drop` on input. Raw UDP: 1472-byte datagrams',
  '(the transport datagram size), payload rate at the receiver. Every process (raw UDP, TCP and',
  'meshwire alike) runs with the V8 tuning of src/common/runtime.ts and first moves 32 MiB unmeasured',
  '(JIT warm-up, as in a running node). `meshwire` runs on its default UDP driver, the batched one',
  '(native/udp_batch.c: recvmmsg/sendmmsg); `meshwire_dgram` is the same transport on node:dgram',
  '(`--udp-driver dgram`), the driver raw UDP uses. Each figure is the median of',
  `${Math.max(...lines.map(l => l.rep ?? 1))} interleaved runs (range in the "runs" column). Machine load average at the end:`,
  `${loadavg()
    .map(x => x.toFixed(1))
    .join(' / ')} (1/5/15 min; other work on the 2 cores makes these figures noisy).`,
  '',
  '"driver/AEAD" is what each process reported using (send side, then receive side when they',
  'differ); "datagrams/call" is datagrams per sendmmsg on the sender / per recvmmsg on the',
  'receiver in the median run, with the share of datagrams that left in GSO (UDP_SEGMENT) runs.',
  '',
  '| transport | loss | goodput MiB/s | runs MiB/s | CPU ms/MiB (both sides) | retransmitted/sent bytes | driver/AEAD | datagrams/call |',
  '|---|---|---|---|---|---|---|---|',
  ...rows,
  '',
  `Raw Node UDP payload: ${figures['udp_raw.payload_mib_s'] ?? 'n/a'} MiB/s${udpSpread ? ` (runs ${udpSpread})` : ''} (driver/AEAD ${processes['udp_raw.loss0']?.send ?? 'n/a'}).`,
  '',
  '`jumbo`: no loss, `lo` at MTU 9000 and 8972-byte datagrams for meshwire (`--max-datagram-size',
  `8972\`) and raw UDP alike; raw UDP there: ${figures['udp_raw.payload_mib_s.jumbo'] ?? 'n/a'} MiB/s${spread('udp_raw.jumbo') ? ` (runs ${spread('udp_raw.jumbo')})` : ''}.`,
  'The targets are for the 1472-byte runs.',
  '',
  syscalls
    ? 'The kernel here, per 1472-byte datagram over this loopback (`make bench-udp-syscalls`, same namespace):\n\n```\n' +
      syscalls +
      '\n```'
    : 'The kernel cost per datagram was not measured (no C compiler: `make bench-udp-syscalls`).',
  '',
  'Ratios: ' +
    Object.entries(ratios)
      .map(([k, v]) => `\`${k}\` ${v}`)
      .join(', ') +
    '.',
].join('\n');
const docPath = join(root, 'docs/benchmarks.md');
const doc = readFileSync(docPath, 'utf8');
const start = '<!-- bench:transport:start -->';
const end = '<!-- bench:transport:end -->';
const i = doc.indexOf(start);
const j = doc.indexOf(end);
if (i >= 0 && j > i)
  writeFileSync(docPath, doc.slice(0, i + start.length) + '\n' + section + '\n' + doc.slice(j));
process.stdout.write(JSON.stringify({ figures, ratios }, null, 2) + '\n');
