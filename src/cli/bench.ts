/**
 * `meshwire bench pub|request`: load against a running node (as `nats bench` is for
 * NATS) with the load code of src/cli/load; a progress line on stderr, the summary on
 * stdout (text, or one JSON object with --json).
 */
import { InvalidArgumentError, systemClock } from '../common';
import type { MeshwireClients } from '../app';
import {
  CreditGate,
  LatencyHistogram,
  PublisherStats,
  RequesterStats,
  ResponderStats,
  STAMP_BYTES,
  StopSignal,
  SubscriberStats,
  asciiHistogram,
  runPublisher,
  runRequester,
  startResponder,
  startSubscriber,
} from './load';
import type { LoadLimits, MessengerApi } from './load';

type Opts = Record<string, unknown>;
const clock = systemClock;
const MIB = 1024 * 1024;
/** Without --msgs or --duration-ms. */
const DEFAULT_MSGS = 100_000;
/** The longest run without --duration-ms, so that a run always ends. */
const DEFAULT_MAX_MS = 600_000;

function intOpt(value: unknown, what: string, min: number, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    throw new InvalidArgumentError(`${what} must be an integer >= ${min}, got "${String(value)}"`);
  return n;
}

function limits(opts: Opts): LoadLimits {
  const hasMsgs = opts.msgs !== undefined;
  const hasDuration = opts.durationMs !== undefined;
  return {
    maxMessages: hasMsgs || !hasDuration ? intOpt(opts.msgs, '--msgs', 1, DEFAULT_MSGS) : Infinity,
    maxMs: intOpt(opts.durationMs, '--duration-ms', 1, DEFAULT_MAX_MS),
  };
}

function rate(n: number, ms: number): number {
  return ms > 0 ? (n * 1000) / ms : 0;
}

const round = (x: number, digits = 3): number => Number(x.toFixed(digits));

/** Prints `line()` on stderr every 250 ms while the run lasts (TTY or --progress). */
function progress(opts: Opts, line: () => string): () => void {
  if (!(opts.progress === true || process.stderr.isTTY)) return () => undefined;
  const timer = setInterval(() => process.stderr.write(`\r${line()}   `), 250);
  return () => {
    clearInterval(timer);
    process.stderr.write(`\r${line()}   \n`);
  };
}

function latencyText(h: LatencyHistogram): string[] {
  const s = h.summary();
  const f = (x: number): string => x.toFixed(3);
  return [
    `latency ms: min ${f(s.minMs)} mean ${f(s.meanMs)} p50 ${f(s.p50Ms)} p90 ${f(s.p90Ms)} p99 ${f(s.p99Ms)} p99.9 ${f(s.p999Ms)} max ${f(s.maxMs)}`,
    ...asciiHistogram(h),
  ];
}

function latencyJson(h: LatencyHistogram): Record<string, number> {
  const s = h.summary();
  return Object.fromEntries(Object.entries(s).map(([k, v]) => [k, round(v)]));
}

/** Ctrl-C: stop sending, then the summary so far. */
function onInterrupt(stop: StopSignal): () => void {
  const handler = (): void => stop.stop();
  process.once('SIGINT', handler);
  return () => process.off('SIGINT', handler);
}

export async function benchPub(clients: MeshwireClients, opts: Opts): Promise<void> {
  const api = clients.messenger as unknown as MessengerApi;
  const subject = String(opts.subject);
  const pubs = intOpt(opts.pubs, '--pubs', 1, 1);
  const subCount = intOpt(opts.subs, '--subs', 0, 1);
  const queueGroup = opts.queueGroup === undefined ? undefined : String(opts.queueGroup);
  const p = {
    ...limits(opts),
    subject,
    size: intOpt(opts.size, '--size', 0, 128),
    batch: intOpt(opts.batch, '--batch', 1, 64),
    inFlight: intOpt(opts.inFlight, '--in-flight', 1, 8),
    window: intOpt(opts.window, '--window', 1, 10_000),
    queueGroup,
    maxBatch: 256,
  };
  const stop = new StopSignal();
  const subs = Array.from({ length: subCount }, () => new SubscriberStats());
  const cancels: (() => void)[] = [];
  try {
    for (const s of subs) cancels.push(await startSubscriber(api, p, s, clock));
    const pubStats = Array.from({ length: pubs }, () => new PublisherStats());
    const shared = new CreditGate(
      subs,
      queueGroup !== undefined,
      p.window,
      stop,
      clock,
      clock.now() + p.maxMs
    );
    const started = clock.now();
    const received = (): number => subs.reduce((n, s) => n + s.received, 0);
    const endProgress = progress(
      opts,
      () =>
        `meshwire bench: sent ${shared.sent} received ${received()} in ${((clock.now() - started) / 1000).toFixed(1)} s`
    );
    const offInterrupt = onInterrupt(stop);
    try {
      await Promise.all(pubStats.map(s => runPublisher(api, p, s, shared, stop, clock)));
      // Until every subscriber has what it should, or nothing more comes (bounded).
      const expected = queueGroup !== undefined ? shared.sent : shared.sent * subs.length;
      const settleEnd = clock.now() + 5_000;
      let last = -1;
      let stableSince = clock.now();
      while (subs.length > 0 && !stop.stopped && clock.now() < settleEnd) {
        const total = subs.reduce((n, s) => n + s.received + s.dropped, 0);
        if (total >= expected) break;
        if (total !== last) [last, stableSince] = [total, clock.now()];
        else if (clock.now() - stableSince > 500) break;
        await stop.sleep(10);
      }
    } finally {
      offInterrupt();
      endProgress();
    }
    const pubElapsed =
      Math.max(...pubStats.map(s => s.lastAt)) - Math.min(...pubStats.map(s => s.firstAt));
    const sent = pubStats.reduce((n, s) => n + s.sent, 0);
    const pubBytes = pubStats.reduce((n, s) => n + s.bytes, 0);
    const latency = new LatencyHistogram();
    for (const s of subs) latency.merge(s.latency);
    const subElapsed =
      subs.length > 0
        ? Math.max(...subs.map(s => s.lastAt)) -
          Math.min(...subs.filter(s => s.received > 0).map(s => s.firstAt), Infinity)
        : 0;
    const subElapsedMs = Number.isFinite(subElapsed) ? subElapsed : 0;
    const subReceived = received();
    const subBytes = subs.reduce((n, s) => n + s.bytes, 0);
    const result = {
      kind: 'pub',
      subject,
      size: p.size,
      publishers: pubs,
      subscribers: subCount,
      queueGroup: queueGroup ?? null,
      interrupted: stop.stopped,
      pub: {
        sent,
        elapsedMs: round(pubElapsed),
        msgsPerSec: round(rate(sent, pubElapsed), 1),
        mibPerSec: round(rate(pubBytes, pubElapsed) / MIB),
      },
      sub: {
        received: subReceived,
        perSubscriber: subs.map(s => s.received),
        dropped: subs.reduce((n, s) => n + s.dropped, 0),
        elapsedMs: round(subElapsedMs),
        msgsPerSec: round(rate(subReceived, subElapsedMs), 1),
        mibPerSec: round(rate(subBytes, subElapsedMs) / MIB),
        latency: subCount > 0 && p.size >= STAMP_BYTES ? latencyJson(latency) : null,
      },
    };
    if (opts.json) {
      console.log(JSON.stringify(result));
      return;
    }
    const lines = [
      `pub/sub on ${subject}: ${pubs} publisher(s), ${subCount} subscriber(s)${queueGroup ? ` in queue group ${queueGroup}` : ''}, ${p.size} B messages${stop.stopped ? ' (interrupted)' : ''}`,
      `pub: ${sent} msgs in ${(pubElapsed / 1000).toFixed(3)} s: ${result.pub.msgsPerSec.toFixed(0)} msgs/s, ${result.pub.mibPerSec.toFixed(2)} MiB/s`,
    ];
    if (subCount > 0) {
      lines.push(
        `sub: ${subReceived} msgs in ${(subElapsedMs / 1000).toFixed(3)} s: ${result.sub.msgsPerSec.toFixed(0)} msgs/s, ${result.sub.mibPerSec.toFixed(2)} MiB/s, dropped ${result.sub.dropped}`
      );
      if (p.size >= STAMP_BYTES) lines.push(...latencyText(latency));
    }
    console.log(lines.join('\n'));
  } finally {
    for (const c of cancels) c();
  }
}

export async function benchRequest(clients: MeshwireClients, opts: Opts): Promise<void> {
  const api = clients.messenger as unknown as MessengerApi;
  const subject = String(opts.subject);
  const p = {
    ...limits(opts),
    subject,
    size: intOpt(opts.size, '--size', 0, 128),
    concurrency: intOpt(opts.concurrency, '--concurrency', 1, 64),
    timeoutMs: intOpt(opts.timeoutMs, '--timeout-ms', 1, 5_000),
  };
  const responderCount = intOpt(opts.responders, '--responders', 0, 1);
  // The tool's own responders echo the payload; others may answer with anything.
  const expectEcho = responderCount > 0;
  const stop = new StopSignal();
  const responders = Array.from({ length: responderCount }, () => new ResponderStats());
  const cancels: (() => void)[] = [];
  try {
    for (const r of responders) cancels.push(await startResponder(api, subject, r));
    const stats = new RequesterStats();
    const started = clock.now();
    const endProgress = progress(
      opts,
      () =>
        `meshwire bench: requests ${stats.sent} answered ${stats.answered} failed ${stats.failed} in ${((clock.now() - started) / 1000).toFixed(1)} s`
    );
    const offInterrupt = onInterrupt(stop);
    try {
      await runRequester(api, { ...p, expectEcho }, stats, stop, clock);
    } finally {
      offInterrupt();
      endProgress();
    }
    const elapsed = clock.now() - started;
    const result = {
      kind: 'request',
      subject,
      size: p.size,
      concurrency: p.concurrency,
      responders: responderCount,
      interrupted: stop.stopped,
      sent: stats.sent,
      answered: stats.answered,
      failed: stats.failed,
      firstError: stats.firstError || null,
      perResponder: responders.map(r => r.answered),
      elapsedMs: round(elapsed),
      msgsPerSec: round(rate(stats.answered, elapsed), 1),
      mibPerSec: round(rate(stats.bytes, elapsed) / MIB),
      latency: latencyJson(stats.latency),
    };
    if (opts.json) {
      console.log(JSON.stringify(result));
      return;
    }
    console.log(
      [
        `request/reply on ${subject}: concurrency ${p.concurrency}, ${responderCount} responder(s), ${p.size} B payloads${stop.stopped ? ' (interrupted)' : ''}`,
        `requests: ${stats.sent} sent, ${stats.answered} answered, ${stats.failed} failed${stats.firstError ? ` (${stats.firstError})` : ''} in ${(elapsed / 1000).toFixed(3)} s: ${result.msgsPerSec.toFixed(0)} msgs/s, ${result.mibPerSec.toFixed(2)} MiB/s`,
        ...latencyText(stats.latency),
      ].join('\n')
    );
  } finally {
    for (const c of cancels) c();
  }
}
