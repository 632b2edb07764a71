/**
 * A real OTLP/gRPC trace receiver for tests and benchmarks: grpc-js serving
 * opentelemetry.proto.collector.trace.v1.TraceService from the official proto
 * definitions vendored under test/fixtures/otel. Nodes export to it through the normal
 * OTLP exporter (OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:<port>,
 * OTEL_EXPORTER_OTLP_PROTOCOL=grpc); spans are kept flattened for assertions.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ServerUnaryCall, ServiceDefinition, sendUnaryData } from '@grpc/grpc-js';
import { Server, ServerCredentials, loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { waitFor as waitUntil } from './wait';

/** Span kinds as OTLP numbers them (trace.proto Span.SpanKind). */
export const OtlpSpanKind = {
  UNSPECIFIED: 0,
  INTERNAL: 1,
  SERVER: 2,
  CLIENT: 3,
  PRODUCER: 4,
  CONSUMER: 5,
} as const;

/** One received span, ids as lowercase hex and attributes as plain values. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
  events: Array<{ name: string; attributes: Record<string, unknown> }>;
  links: Array<{ traceId: string; spanId: string }>;
  status: { code: number; message: string };
  /** service.name of the exporting resource. */
  service: string;
  /** service.instance.id of the exporting resource ('' when absent). */
  serviceInstanceId: string;
  startNs: bigint;
  endNs: bigint;
}

export interface OtlpReceiver {
  /** "http://127.0.0.1:<port>" for OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly endpoint: string;
  readonly port: number;
  /** Every span received so far, in arrival order. */
  readonly spans: ReceivedSpan[];
  /** Export calls received (batches). */
  readonly exports: number;
  /** Spans received (also counted when they are not kept). */
  readonly spanCount: number;
  /** Resolves when `predicate(spans)` holds; rejects after `timeoutMs`. */
  waitFor(predicate: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** test/fixtures/otel, from dist/test/helpers or test/helpers. */
export function otelProtoDir(): string {
  for (const up of ['../../../test/fixtures/otel', '../fixtures/otel']) {
    const dir = resolve(__dirname, up);
    if (existsSync(join(dir, 'opentelemetry'))) return dir;
  }
  throw new Error('test/fixtures/otel (vendored OpenTelemetry protos) not found');
}

/** AnyValue (common.proto) to a plain JS value. */
function anyValue(v: Record<string, unknown> | null | undefined): unknown {
  if (!v) return undefined;
  switch (v.value) {
    case 'stringValue':
      return v.stringValue;
    case 'boolValue':
      return v.boolValue;
    case 'intValue':
      return Number(v.intValue);
    case 'doubleValue':
      return v.doubleValue;
    case 'arrayValue':
      return ((v.arrayValue as { values?: Array<Record<string, unknown>> }).values ?? []).map(
        anyValue
      );
    case 'bytesValue':
      return v.bytesValue;
    default:
      return undefined;
  }
}

type KeyValue = { key: string; value: Record<string, unknown> };
function attrs(list: KeyValue[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of list ?? []) out[kv.key] = anyValue(kv.value);
  return out;
}

const hex = (b: Buffer | undefined): string => (b ? Buffer.from(b).toString('hex') : '');

export interface OtlpReceiverInit {
  /** @default 0 (ephemeral) */
  port?: number;
  /** Keep the spans for assertions; false only counts them (benchmarks). @default true */
  keep?: boolean;
}

/** Starts the receiver on 127.0.0.1. */
export async function startOtlpReceiver(init: OtlpReceiverInit = {}): Promise<OtlpReceiver> {
  const port = init.port ?? 0;
  const keep = init.keep ?? true;
  const dir = otelProtoDir();
  const def = loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto', {
    includeDirs: [dir],
    keepCase: false,
    longs: String,
    enums: Number,
    defaults: true,
    oneofs: true,
  });
  const pkg = loadPackageDefinition(def) as unknown as {
    opentelemetry: {
      proto: {
        collector: {
          trace: { v1: { TraceService: { service: ServiceDefinition } } };
        };
      };
    };
  };
  const spans: ReceivedSpan[] = [];
  let exports = 0;
  let spanCount = 0;
  const server = new Server();
  server.addService(pkg.opentelemetry.proto.collector.trace.v1.TraceService.service, {
    Export: (
      call: ServerUnaryCall<{ resourceSpans: Array<Record<string, unknown>> }, unknown>,
      cb: sendUnaryData<unknown>
    ) => {
      exports++;
      for (const rs of call.request.resourceSpans ?? []) {
        const resource = attrs((rs.resource as { attributes?: KeyValue[] })?.attributes);
        const service = String(resource['service.name'] ?? '');
        const serviceInstanceId = String(resource['service.instance.id'] ?? '');
        for (const ss of (rs.scopeSpans as Array<{ spans: Array<Record<string, unknown>> }>) ??
          []) {
          spanCount += ss.spans?.length ?? 0;
          if (!keep) continue;
          for (const s of ss.spans ?? []) {
            const status = (s.status as { code?: number; message?: string }) ?? {};
            spans.push({
              traceId: hex(s.traceId as Buffer),
              spanId: hex(s.spanId as Buffer),
              parentSpanId: hex(s.parentSpanId as Buffer),
              name: String(s.name),
              kind: Number(s.kind),
              attributes: attrs(s.attributes as KeyValue[]),
              events: ((s.events as Array<{ name: string; attributes: KeyValue[] }>) ?? []).map(
                e => ({ name: e.name, attributes: attrs(e.attributes) })
              ),
              links: ((s.links as Array<{ traceId: Buffer; spanId: Buffer }>) ?? []).map(l => ({
                traceId: hex(l.traceId),
                spanId: hex(l.spanId),
              })),
              status: { code: Number(status.code ?? 0), message: String(status.message ?? '') },
              service,
              serviceInstanceId,
              startNs: BigInt(String(s.startTimeUnixNano ?? '0')),
              endNs: BigInt(String(s.endTimeUnixNano ?? '0')),
            });
          }
        }
      }
      cb(null, {});
    },
  });
  const bound = await new Promise<number>((res, rej) =>
    server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err, p) =>
      err ? rej(err) : res(p)
    )
  );
  return {
    endpoint: `http://127.0.0.1:${bound}`,
    port: bound,
    spans,
    get exports() {
      return exports;
    },
    get spanCount() {
      return spanCount;
    },
    waitFor(predicate, timeoutMs = 10_000) {
      return waitUntil(
        'spans at the OTLP receiver',
        () => predicate(spans),
        timeoutMs,
        () => {
          const counts = new Map<string, number>();
          for (const x of spans) counts.set(x.name, (counts.get(x.name) ?? 0) + 1);
          return `spans: ${[...counts].map(([n, c]) => `${n} x${c}`).join(', ')}`;
        }
      );
    },
    close: () =>
      new Promise<void>(res => {
        server.tryShutdown(() => res());
      }),
  };
}
