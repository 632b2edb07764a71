/**
 * Per-RPC metrics: calls and their latency by method and gRPC status code, made by one
 * grpc-js server interceptor (the style of src/api/grpc-server-spans.ts). It runs
 * first, so calls refused by authentication or limits are counted with their code.
 *
 * Exported as meshwire_rpc_server_calls_total{rpc_service, rpc_method, grpc_code} and the
 * histogram meshwire_rpc_server_duration_seconds (same labels). The hot path pays a clock
 * read, one Map update and one histogram record per call.
 */
import type {
  ServerInterceptingCallInterface,
  ServerInterceptor,
  ServerMethodDefinition,
} from '@grpc/grpc-js';
import type { PartialStatusObject } from '@grpc/grpc-js/build/src/call-interface';
import { ServerInterceptingCall, status as grpcStatus } from '@grpc/grpc-js';
import type { Attributes, Histogram, Meter } from '@opentelemetry/api';

/** RPC latency buckets, seconds: unary calls on a LAN up to long streams. */
export const RPC_DURATION_BUCKETS_S = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
  30, 60, 300,
];

/** Distinct (method, code) series kept; calls beyond it are counted under method "other". */
export const MAX_RPC_SERIES = 512;

/** 0 -> "OK", 3 -> "INVALID_ARGUMENT" (grpc-js status is a numeric enum, reverse-mapped). */
export function grpcCodeName(code: number): string {
  const name = (grpcStatus as unknown as Record<number, string | undefined>)[code];
  return typeof name === 'string' ? name : String(code);
}

interface Series {
  attributes: Attributes;
  calls: number;
}

/** "/pkg.Service/Method" -> ["pkg.Service", "Method"]. */
function splitPath(path: string): [string, string] {
  const i = path.lastIndexOf('/');
  return i > 0 ? [path.slice(1, i), path.slice(i + 1)] : ['', path];
}

export class RpcMetrics {
  private readonly series = new Map<string, Series>();
  private histogram: Histogram | undefined;

  /** `paths` ("/messaging.v1.Messenger/Send"...) are exported at zero with code OK. */
  constructor(paths: Iterable<string> = []) {
    for (const p of paths) this.seriesFor(p, grpcStatus.OK);
  }

  private seriesFor(path: string, code: number): Series {
    let key = `${path} ${code}`;
    let s = this.series.get(key);
    if (s) return s;
    const room = this.series.size < MAX_RPC_SERIES;
    if (!room) {
      key = `other ${code}`;
      s = this.series.get(key);
      if (s) return s;
    }
    const [service, method] = room ? splitPath(path) : ['other', 'other'];
    s = {
      attributes: Object.freeze({
        rpc_service: service,
        rpc_method: method,
        grpc_code: grpcCodeName(code),
      }),
      calls: 0,
    };
    this.series.set(key, s);
    return s;
  }

  /** Counts one finished call (tests, the interceptor). */
  record(path: string, code: number, seconds: number): void {
    const s = this.seriesFor(path, code);
    s.calls++;
    this.histogram?.record(seconds, s.attributes);
  }

  /** Calls so far by "Service/Method code-name" (tests). */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of this.series.values()) {
      const a = s.attributes;
      out[`${String(a.rpc_service)}/${String(a.rpc_method)} ${String(a.grpc_code)}`] = s.calls;
    }
    return out;
  }

  /** The interceptor; put it first in the grpc-js Server `interceptors`. */
  readonly interceptor: ServerInterceptor = (
    method: ServerMethodDefinition<unknown, unknown>,
    call: ServerInterceptingCallInterface
  ): ServerInterceptingCall => {
    const started = performance.now();
    let done = false;
    const end = (code: number): void => {
      if (done) return;
      done = true;
      this.record(method.path, code, (performance.now() - started) / 1000);
    };
    return new ServerInterceptingCall(call, {
      start: next => next({ onCancel: () => end(grpcStatus.CANCELLED) }),
      sendStatus: (st: PartialStatusObject, next) => {
        end(st.code);
        next(st);
      },
    });
  };

  /** Creates the instruments on `meter` (once per server). */
  attach(meter: Meter): void {
    this.histogram = meter.createHistogram('meshwire.rpc.server.duration', {
      description: 'gRPC calls served, from arrival to status, by method and status code',
      unit: 's',
      advice: { explicitBucketBoundaries: RPC_DURATION_BUCKETS_S },
    });
    meter
      .createObservableCounter('meshwire.rpc.server.calls', {
        description: 'gRPC calls served, by method and status code (grpc_code)',
        unit: '{call}',
      })
      .addCallback(r => {
        for (const s of this.series.values()) r.observe(s.calls, s.attributes);
      });
  }
}
