/**
 * CPU per Request of tracing's own work, in one process, without gRPC or the transport:
 * the telemetry calls a local Request makes on a node (the Request server span as the
 * gRPC interceptor starts it, traceSend, startReceiveSpan, traceDeliveries,
 * startRespondSpan under a RespondStream span, the server span's end), with the real SDK,
 * batch span processor and OTLP/gRPC exporter sending to the bench receiver (receiver.ts)
 * in a process of its own. A figure the shared, noisy machine disturbs far less than
 * `make bench-telemetry`'s throughput: use it to compare two builds of src/telemetry.
 *
 *   node dist/bench/telemetry/span-cost.js [--requests N] [--rounds R]
 *        [--telemetry OTHER/dist/src/telemetry]   (A/B: that build interleaved with this one)
 *
 * Prints, per build and mode (off, full = parentbased_always_on, sampled_1 = ratio 0.01),
 * the median over the rounds of CPU (user + system) µs per Request, export included (the
 * processor is flushed every 384 Requests, as a node at a few thousand Requests/s would
 * export: nothing is dropped). Writes nothing.
 */
import type { ChildProcess } from 'node:child_process';
import { fork } from 'node:child_process';
import { join } from 'node:path';
import type { Context, ContextManager, Span, TextMapGetter } from '@opentelemetry/api';
import { context, propagation, ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import {
  CompositePropagator,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { tracing } from '@opentelemetry/sdk-node';
import { fmt, median, markdownTable } from '../common';
import { runtimeFlags, tuneRuntime } from '../../src/common/runtime';
import type * as telemetry from '../../src/telemetry';

/** The telemetry layer's public face (index.js), of this build or the one under comparison. */
type MessagingSpans = typeof telemetry;
type Mode = 'off' | 'full' | 'sampled_1';
const MODES: Mode[] = ['off', 'full', 'sampled_1'];
const IN_FLIGHT = 64;
const FLUSH_EVERY = 384;
const OWN_TELEMETRY = join(__dirname, '..', '..', 'src', 'telemetry');

interface ChildResult {
  usPerRequest: number;
  dropped: number;
}

/** One build, one mode, in this (child) process. */
async function measure(telemetryDir: string, mode: Mode, requests: number): Promise<ChildResult> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the build under test is chosen at run time
  const tel = require(join(telemetryDir, 'index.js')) as MessagingSpans;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- same build as tel
  const { SyncContextManager } = require(join(telemetryDir, 'sync-context-manager.js')) as {
    SyncContextManager: new () => ContextManager;
  };
  let receiver: ChildProcess | undefined;
  let endpoint = 'http://127.0.0.1:1';
  if (mode !== 'off') {
    receiver = fork(join(__dirname, 'receiver.js'), [], { execArgv: runtimeFlags() });
    endpoint = await new Promise<string>(resolve =>
      receiver!.once('message', (m: { endpoint: string }) => resolve(m.endpoint))
    );
  }
  const root =
    mode === 'full' ? new tracing.AlwaysOnSampler() : new tracing.TraceIdRatioBasedSampler(0.01);
  const processor = new tracing.BatchSpanProcessor(new OTLPTraceExporter({ url: endpoint }), {
    maxQueueSize: 65536,
    maxExportBatchSize: 2048,
    scheduledDelayMillis: 500,
  });
  const provider = new tracing.BasicTracerProvider({
    sampler: new tracing.ParentBasedSampler({ root }),
    spanProcessors: [processor],
    resource: resourceFromAttributes({ 'service.name': 'span-cost', 'service.instance.id': 'a' }),
  });
  context.setGlobalContextManager(new SyncContextManager());
  if (mode !== 'off') {
    trace.setGlobalTracerProvider(provider);
    propagation.setGlobalPropagator(
      new CompositePropagator({
        propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
      })
    );
    tel.setMessagingTracing(true);
  }
  const grpcTracer = trace.getTracer('meshwire-grpc');
  const noMetadata: TextMapGetter<Record<string, string>> = {
    keys: c => Object.keys(c),
    get: (c, k) => c[k],
  };
  const payload = Buffer.alloc(256, 7);
  const stream = grpcTracer.startSpan('messaging.v1.Messenger/RespondStream', {
    kind: SpanKind.SERVER,
  });
  const streamCtx = trace.setSpan(ROOT_CONTEXT, stream);
  let seq = 0;

  /** One Request: resolved (the reply is back) by the caller through `replies`. */
  const request = (replies: (() => void)[]): Promise<void> => {
    const id = String(++seq);
    let server: Span | undefined;
    let ctx: Context = ROOT_CONTEXT;
    if (mode !== 'off') {
      const parent = propagation.extract(ROOT_CONTEXT, {}, noMetadata);
      server = grpcTracer.startSpan(
        'messaging.v1.Messenger/Request',
        { kind: SpanKind.SERVER },
        parent
      );
      if (server.isRecording()) {
        server.setAttributes({
          'rpc.system': 'grpc',
          'rpc.service': 'messaging.v1.Messenger',
          'rpc.method': 'Request',
          'network.peer.address': '127.0.0.1:50000',
        });
        // builds before the server span became the producer have no offer
        (tel as Partial<MessagingSpans>).offerServerSpan?.(server);
      }
      ctx = trace.setSpan(parent, server);
    }
    const msg = { id, topic: 'bench.echo', payload, headers: {} as Record<string, string> };
    const replied = context.with(ctx, () =>
      tel.traceSend(msg, { localPeer: 'a', request: true }, () => {
        const rx = tel.startReceiveSpan(msg, { localPeer: 'a', sourcePeer: 'a', request: true });
        const routed = rx ? rx.message : msg;
        rx?.end(1);
        const batch = tel.traceDeliveries(
          { deliveries: [{ message: routed, sourcePeer: 'a', replyTo: `t${id}` }] },
          { id: 's1', queueGroup: '' }
        );
        const reply = {
          id: `r${id}`,
          topic: '',
          payload,
          headers: { ...batch.deliveries[0]!.message.headers },
        };
        tel.endSpan(context.with(streamCtx, () => tel.startRespondSpan(reply, 'a')));
        return new Promise<void>(resolve => replies.push(resolve));
      })
    );
    return replied.then(() => {
      server?.setAttribute('rpc.grpc.status_code', 0);
      server?.end();
    });
  };
  const run = async (n: number): Promise<void> => {
    for (let done = 0; done < n; done += IN_FLIGHT) {
      const replies: (() => void)[] = [];
      const pending = Array.from({ length: IN_FLIGHT }, () => request(replies));
      for (const r of replies) r();
      await Promise.all(pending);
      if (mode !== 'off' && (done + IN_FLIGHT) % FLUSH_EVERY === 0) await processor.forceFlush();
    }
  };
  await run(Math.min(requests, 20_000)); // warm-up
  await processor.forceFlush();
  const before = process.cpuUsage();
  await run(requests);
  await processor.forceFlush();
  const used = process.cpuUsage(before);
  // the processor's own drop count (not part of its public interface)
  const dropped = (processor as unknown as { _droppedSpansCount?: number })._droppedSpansCount;
  await provider.shutdown();
  receiver?.disconnect();
  return { usPerRequest: (used.user + used.system) / requests, dropped: dropped ?? 0 };
}

function child(argv: string[]): void {
  const [dir, mode, n] = argv;
  void measure(dir!, mode as Mode, Number(n)).then(r => {
    process.send?.(r);
    process.exit(0);
  });
}

function inChild(dir: string, mode: Mode, requests: number): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const c = fork(__filename, ['--child', dir, mode, String(requests)], {
      execArgv: runtimeFlags(),
    });
    c.once('message', m => resolve(m as ChildResult));
    c.once('exit', code => (code ? reject(new Error(`span-cost child exited ${code}`)) : null));
  });
}

async function main(argv: string[]): Promise<void> {
  const num = (flag: string, dflt: number): number => {
    const i = argv.indexOf(flag);
    return i >= 0 ? Number(argv[i + 1]) : dflt;
  };
  const t = argv.indexOf('--telemetry');
  const builds: [string, string][] = [['this build', OWN_TELEMETRY]];
  if (t >= 0) builds.unshift(['other build', argv[t + 1]!]);
  const requests = num('--requests', 20_000);
  const rounds = num('--rounds', 3);
  const samples = new Map<string, number[]>();
  for (let round = 0; round < rounds; round++) {
    for (const mode of MODES) {
      for (const [label, dir] of builds) {
        const r = await inChild(dir, mode, requests);
        if (r.dropped > 0) throw new Error(`${label} ${mode}: ${r.dropped} spans dropped`);
        const key = `${label}\t${mode}`;
        samples.set(key, [...(samples.get(key) ?? []), r.usPerRequest]);
        process.stdout.write(`round ${round + 1} ${label} ${mode}: ${fmt(r.usPerRequest)} µs\n`);
      }
    }
  }
  const rows = [...samples].map(([key, v]) => [...key.split('\t'), fmt(median(v))]);
  process.stdout.write(`${markdownTable(['build', 'tracing', 'CPU µs per Request'], rows)}\n`);
}

tuneRuntime();
const args = process.argv.slice(2);
if (args[0] === '--child') child(args.slice(1));
else
  main(args).catch(err => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
