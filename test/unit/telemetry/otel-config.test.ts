/**
 * The pieces behind visible telemetry failures and Prometheus names: the OTEL_* checks
 * (resolveTraceConfig), the per-kind rate limit of diagnostic lines, the SDK diag logger
 * writing one JSON line per message, and the unit suffixes of metric names.
 */
import { Writable } from 'node:stream';
import test from 'ava';
import { isMeshwireError } from '../../../src/common';
import {
  RateLimitedLog,
  createLogger,
  pinoDiagLogger,
  resolveTraceConfig,
  withUnitSuffix,
} from '../../../src/telemetry';

function capture(): { lines: Array<Record<string, unknown>>; stream: Writable } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, stream };
}

test('OTEL_TRACES_EXPORTER: otlp, console, none; unset means otlp only with an endpoint', t => {
  t.is(resolveTraceConfig({}).exporter, 'none');
  t.is(resolveTraceConfig({ OTEL_TRACES_EXPORTER: 'console' }).exporter, 'console');
  t.is(
    resolveTraceConfig({
      OTEL_TRACES_EXPORTER: 'none',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317',
    }).exporter,
    'none'
  );
  t.is(
    resolveTraceConfig({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'console' }).exporter,
    'none'
  );
  t.deepEqual(resolveTraceConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }), {
    exporter: 'otlp',
    protocol: 'http/protobuf',
    endpoint: 'http://c:4318/v1/traces',
    endpointVariable: 'OTEL_EXPORTER_OTLP_ENDPOINT',
  });
  t.like(
    resolveTraceConfig({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'https://c:4317',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    }),
    { protocol: 'grpc', endpoint: 'https://c:4317/' }
  );
  t.like(resolveTraceConfig({ OTEL_TRACES_EXPORTER: 'otlp' }), {
    endpoint: 'http://localhost:4318/v1/traces',
  });
  t.like(
    resolveTraceConfig({
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:1/custom',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://base:2',
    }),
    { endpoint: 'http://t:1/custom', endpointVariable: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' }
  );
});

test('invalid OTEL_* settings are refused with InvalidArgumentError naming the variable', t => {
  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ OTEL_TRACES_EXPORTER: 'jaeger' }, /OTEL_TRACES_EXPORTER="jaeger": unsupported exporter/],
    [{ OTEL_TRACES_EXPORTER: 'otlp,console' }, /name one exporter/],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4317' },
      /OTEL_EXPORTER_OTLP_ENDPOINT="collector:4317": unsupported scheme/,
    ],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' }, /not a URL/],
    [
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317',
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'thrift',
      },
      /OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="thrift"/,
    ],
  ];
  for (const [env, message] of bad) {
    const err = t.throws(() => resolveTraceConfig(env), { message }, JSON.stringify(env));
    t.true(isMeshwireError(err) && err.code === 'INVALID_ARGUMENT');
  }
});

test('rate limit: one line per kind per interval, the next one says how many were suppressed', t => {
  const { lines, stream } = capture();
  let now = 1_000;
  const limited = new RateLimitedLog(createLogger({ destination: stream }), 30_000, () => now);
  t.true(limited.write('a', 'error', { x: 1 }, 'first'));
  t.false(limited.write('a', 'error', {}, 'again'));
  t.false(limited.write('a', 'error', {}, 'again'));
  t.true(limited.write('b', 'warn', {}, 'other kind'));
  now += 30_000;
  t.true(limited.write('a', 'error', {}, 'later'));
  t.is(limited.suppressedTotal, 2);
  t.deepEqual(
    lines.map(l => [l.kind, l.msg, l.suppressed]),
    [
      ['a', 'first', undefined],
      ['b', 'other kind', undefined],
      ['a', 'later', 2],
    ]
  );
});

test('diag messages become one JSON line each, with level, node_id and printable args', t => {
  const { lines, stream } = capture();
  const log = createLogger({ destination: stream, level: 'trace', base: { node_id: 'n1' } });
  const diag = pinoDiagLogger(new RateLimitedLog(log, 30_000, () => 0));
  diag.warn('Dropped 12 spans because maxQueueSize reached');
  diag.warn('Dropped 13 spans because maxQueueSize reached'); // same kind: suppressed
  diag.error('export failed', new Error('line one\nline two'), { nested: { a: 1 } });
  diag.verbose('very detailed');
  t.is(lines.length, 3);
  t.like(lines[0], { level: 'warn', node_id: 'n1', otel_level: 'warn' });
  t.like(lines[1], { level: 'error', args: ['Error: line one\nline two', { nested: { a: 1 } }] });
  t.like(lines[2], { level: 'trace', otel_level: 'verbose' });
});

test('unit suffixes: seconds and bytes are appended once, other units add none', t => {
  t.is(withUnitSuffix('meshwire.transport.srtt', 's'), 'meshwire.transport.srtt_seconds');
  t.is(withUnitSuffix('meshwire.transport.cwnd', 'By'), 'meshwire.transport.cwnd_bytes');
  t.is(
    withUnitSuffix('meshwire.subscriber.buffered.bytes', 'By'),
    'meshwire.subscriber.buffered.bytes'
  );
  t.is(withUnitSuffix('meshwire.messages.sent', '{message}'), 'meshwire.messages.sent');
  t.is(
    withUnitSuffix('nodejs.eventloop_utilization_ratio', '1'),
    'nodejs.eventloop_utilization_ratio'
  );
});
