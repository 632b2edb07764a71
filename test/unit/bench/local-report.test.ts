/**
 * The pure parts of `make bench-local`: the ratios against the anchors and their targets,
 * the docs section, and the CPU figures read from /proc/<pid>/stat.
 */
import test from 'ava';
import { computeRatios, RATIOS, renderSection, targetMet } from '../../../bench/local/report';
import {
  clockTicksPerSecond,
  cpuTicks,
  CpuWindow,
  parseStatTicks,
} from '../../../bench/common/cpu';
import type { SectionMeta } from '../../../bench/common/results';

const FIGURES: Record<string, number> = {
  'grpc_floor.unary_p50_us': 400,
  'grpc_floor.unary_p99_us': 1_000,
  'grpc_floor.server_cpu_us_per_call': 300,
  'meshwire.request_p50_us': 1_000,
  'meshwire.request_p99_us': 2_000,
  'meshwire.request_stream_responder_p50_us': 600,
  'meshwire.request_stream_responder_p99_us': 3_000,
  'meshwire.node_cpu_us_per_request': 660,
  'meshwire.node_cpu_us_per_request_unary_respond': 900,
};

const META: SectionMeta = {
  command: 'make bench-local',
  date: '2026-12-05 12:00 UTC',
  runs: 5,
  warmupMs: 1_000,
  durationMs: 3_000,
  node: 'v20.0.0',
  cpus: 2,
  machine: { cpuModel: 'Test CPU 9000', cores: 2, kernel: '6.1.0-test', node: 'v20.0.0' },
  processes: { 'meshwire bench': 'batch/openssl' },
  spread: { 'meshwire.node_cpu_us_per_request': [650, 660, 700] },
};

test('the stream-responder and CPU ratios are computed against the grpc-js floor', t => {
  const r = computeRatios(FIGURES);
  t.is(r.request_p50_vs_floor_unary_p50, 2.5);
  t.is(r.request_stream_responder_p50_vs_floor_unary_p50, 1.5);
  t.is(r.request_stream_responder_p99_vs_floor_unary_p99, 3);
  t.is(r.node_cpu_per_request_vs_floor_server_cpu_per_call, 2.2);
  t.is(r.node_cpu_per_request_unary_respond_vs_floor_server_cpu_per_call, 3);
  // NATS was not measured: no ratio against it, rather than a wrong one.
  t.false('request_rps_64_vs_nats' in r);
});

test("issue 16's targets: stream responder p50 <= 1.6, CPU <= 2.0, request p50 <= 2.0", t => {
  const def = (key: string) => RATIOS.find(d => d.key === key)!;
  const p50 = def('request_stream_responder_p50_vs_floor_unary_p50');
  t.deepEqual(p50.target, { op: '<=', value: 1.6, issue: 16 });
  t.true(targetMet(p50, 1.6));
  t.false(targetMet(p50, 1.61));
  const cpu = def('node_cpu_per_request_vs_floor_server_cpu_per_call');
  t.is(cpu.meshwire, 'meshwire.node_cpu_us_per_request');
  t.is(cpu.anchor, 'grpc_floor.server_cpu_us_per_call');
  t.false(targetMet(cpu, 2.2));
  t.is(def('request_p50_vs_floor_unary_p50').target?.value, 2.0);
  t.is(def('request_p99_vs_floor_unary_p99').target?.value, 2.5);
  t.is(targetMet(def('request_p50_vs_nats'), 1), undefined);
  // Every ratio has its own key (they are the keys of bench/results/local.json).
  t.is(new Set(RATIOS.map(d => d.key)).size, RATIOS.length);
});

test('the section prints the CPU rows beside the time rows, the machine, and unmet targets', t => {
  const md = renderSection(FIGURES, computeRatios(FIGURES), META);
  // the header is wrapped: compare it as one line
  t.regex(
    md.replace(/\n/g, ' '),
    /Machine: Test CPU 9000, 2 cores, Linux 6\.1\.0-test, Node v20\.0\.0\. UDP driver\/AEAD backend as each meshwire process reported it: meshwire bench batch\/openssl\. The 2 cores are shared/
  );
  t.regex(
    md,
    /\| request p50 \(us\), sequential, RespondStream \| 600 \| 400 \(bare grpc-js unary p50\) \| 1\.50 \| <= 1\.6 \(#16\) \| yes \|/
  );
  t.regex(
    md,
    /\| node CPU \(us\) per request, sequential, RespondStream \| 660 \| 300 \(bare grpc-js server CPU per unary call\) \| 2\.20 \| <= 2\.0 \(#16\) \| \*\*no\*\* \|/
  );
  t.regex(md, /\| `meshwire\.node_cpu_us_per_request` \| 660 \| 650, 660, 700 \|/);
  t.regex(md, /\/proc\/<pid>\/stat/);
  // No meshwire process reported its stack: the intro says so, and still names Node.
  const bare = renderSection(FIGURES, {}, { ...META, processes: {} }).replace(/\n/g, ' ');
  t.regex(bare, /Node v20\.0\.0\. No meshwire process reported its UDP driver\/AEAD backend\./);
});

test('utime + stime are read after the command name, even one with spaces and parentheses', t => {
  // fields 14 and 15 are 7 and 5; the name "(a) b)" would shift a naive split
  const stat = '42 ((a) b)) S 1 42 42 0 -1 4194304 101 0 0 0 7 5 0 0 20 0 1 0 3240 313344 414';
  t.is(parseStatTicks(stat), 12);
  t.throws(() => parseStatTicks('42 (x) S 1'), { message: /unexpected/ });
});

test('CpuWindow counts the CPU a process burns in the window, per operation', t => {
  const hz = clockTicksPerSecond();
  t.true(hz > 0);
  const w = new CpuWindow([process.pid]);
  w.start();
  // Burn until /proc says this process used 5 more ticks (no wall-clock assumption).
  const from = cpuTicks(process.pid);
  let x = 0;
  const giveUp = Date.now() + 20_000;
  while (cpuTicks(process.pid) - from < 5 && Date.now() < giveUp) {
    for (let i = 0; i < 100_000; i++) x += Math.sqrt(i);
  }
  w.stop();
  t.true(x > 0);
  // at least the 5 ticks, over 5 ops: >= 1 tick (1e6 / hz us) per op
  t.true(w.usPerOp(5) >= 1e6 / hz, `${w.usPerOp(5)} us per op`);
  t.is(w.usPerOp(10), w.usPerOp(5) / 2);
  t.true(Number.isNaN(w.usPerOp(0)));
});
