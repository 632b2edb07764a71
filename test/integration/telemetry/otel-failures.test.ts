/**
 * Telemetry that fails visibly, on real `meshwire serve` processes: spans sent to a dead
 * OTLP endpoint produce a logged export error naming the endpoint and protocol;
 * OTEL_TRACES_EXPORTER=console prints spans as JSON lines; the SDK's diagnostics
 * (OTEL_LOG_LEVEL) are JSON lines with level and node id; a bad endpoint, protocol or
 * exporter stops the start with one line and a non-zero exit.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type { ServiceError } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import test from 'ava';
import type { MeshwireClients } from '../../../src/api';
import { createClients } from '../../../src/api';
import type { NodeProcess } from './node-process';
import { listenFlags } from '../../helpers/processes';
import { parseExposition, sampleValue } from '../../helpers/promql';
import { waitFor } from '../../helpers/wait';
import { CLI, scrape, startNodeProcess } from './node-process';

/** A loopback TCP port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>(resolve => srv.listen(0, '127.0.0.1', resolve));
  const addr = srv.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  await new Promise<void>(resolve => srv.close(() => resolve()));
  return port;
}

function send(clients: MeshwireClients, topic: string): Promise<unknown> {
  const fn = (
    clients.messenger as unknown as Record<string, (...a: unknown[]) => unknown>
  ).Send.bind(clients.messenger);
  return new Promise((resolve, reject) =>
    fn(
      { message: { topic, payload: Buffer.from('x'), headers: {} } },
      new Metadata(),
      { deadline: Date.now() + 10_000 },
      (err: ServiceError | null, res: unknown) => (err ? reject(err) : resolve(res))
    )
  );
}

/** Waits (bounded) for a JSON log line of `node` satisfying `pred`. */
async function waitForLine(
  node: NodeProcess,
  pred: (l: Record<string, unknown>) => boolean,
  maxMs = 15_000
): Promise<Record<string, unknown> | undefined> {
  let found: Record<string, unknown> | undefined;
  const look = (): boolean => {
    for (const line of node.lines) {
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        if (pred(parsed)) found = parsed;
      } catch {
        // not JSON: the test that cares checks it
      }
      if (found) return true;
    }
    return false;
  };
  // Bounded, not thrown: the caller asserts on the line with the whole log.
  await waitFor('a log line', look, maxMs).catch(() => undefined);
  return found;
}

test('a dead OTLP endpoint: the export error is logged, once, naming endpoint and protocol', async t => {
  const port = await closedPort();
  const node = await startNodeProcess(['--node-id', 'otel-dead'], {
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    OTEL_BSP_SCHEDULE_DELAY: '20',
    OTEL_EXPORTER_OTLP_TIMEOUT: '2000',
  });
  const clients = createClients(node.grpc);
  try {
    await send(clients, 'otel.dead');
    const line = await waitForLine(node, l => l.kind === 'trace_export');
    t.truthy(line, `no export error logged:\n${node.lines.join('\n')}`);
    t.like(line, {
      level: 'error',
      node_id: 'otel-dead',
      component: 'otel',
      protocol: 'grpc',
      exporter: 'otlp',
    });
    t.true(String(line?.endpoint).includes(`127.0.0.1:${port}`));
    t.regex(String(line?.error), /UNAVAILABLE|ECONNREFUSED/);
    t.true(typeof line?.time === 'string');
    // More than one batch failed (the metric counts each), yet one line was logged.
    let failures = 0;
    await waitFor(
      'two failed exports counted',
      async () => {
        await send(clients, 'otel.dead');
        failures =
          sampleValue(
            parseExposition(await scrape(node.metricsPort)),
            'meshwire_trace_export_errors_total'
          ) ?? 0;
        return failures >= 2;
      },
      15_000
    ).catch(() => undefined); // asserted just below, with the count
    t.true(failures >= 2, `export failures counted: ${failures}`);
    t.is(node.lines.filter(l => l.includes('"kind":"trace_export"')).length, 1);
    const start = await waitForLine(node, l => l.msg === 'exporting traces over OTLP');
    t.like(start, { protocol: 'grpc' });
  } finally {
    clients.close();
    await node.stop();
  }
});

test('OTEL_TRACES_EXPORTER=console prints spans as JSON lines; OTEL_LOG_LEVEL lines are JSON with level and node_id', async t => {
  const node = await startNodeProcess(['--node-id', 'otel-console'], {
    OTEL_TRACES_EXPORTER: 'console',
    OTEL_LOG_LEVEL: 'debug',
  });
  const clients = createClients(node.grpc);
  try {
    await send(clients, 'otel.console');
    const span = await waitForLine(
      node,
      l => (l.span as { name?: string } | undefined)?.name === 'messaging.v1.Messenger/Send'
    );
    t.truthy(span, `no span printed:\n${node.lines.join('\n')}`);
    t.like(span, { level: 'info', node_id: 'otel-console', component: 'trace' });
    t.regex(String(span?.trace_id), /^[0-9a-f]{32}$/);
    // The Send call's server span is its message's producer span (no `send` span).
    t.like(span?.span, {
      kind: 'server',
      attributes: {
        'rpc.method': 'Send',
        'messaging.operation.type': 'send',
        'messaging.destination.name': 'otel.console',
      },
    });

    // The SDK's diagnostics: JSON, with level, time and node id, nothing multi-line.
    const diagLines = node.lines
      .map(l => JSON.parse(l) as Record<string, unknown>)
      .filter(l => l.component === 'otel');
    t.true(diagLines.length > 0, 'debug diagnostics logged');
    for (const l of diagLines) {
      t.like(l, { node_id: 'otel-console' });
      t.true(['debug', 'info', 'warn', 'error', 'trace'].includes(String(l.level)));
      t.is(typeof l.time, 'string');
    }
    // Every stdout line is one JSON object (JSON.parse above would have thrown).
    t.true(node.lines.every(l => l.startsWith('{') && l.endsWith('}')));
  } finally {
    clients.close();
    await node.stop();
  }
});

/** Runs `serve` with `env`; resolves with its exit code and everything it printed. */
function serveOnce(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const proc = spawn(
    process.execPath,
    [CLI, 'serve', '--node-id', 'bad', ...listenFlags(0, 0, 0)],
    { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] }
  );
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
  return new Promise(resolve =>
    proc.on('close', code => {
      clearTimeout(timer);
      resolve({ code, out });
    })
  );
}

test('a bad endpoint, protocol or exporter: exit 2 with one line naming the variable', async t => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://collector:4317' },
      /OTEL_EXPORTER_OTLP_ENDPOINT=.*scheme "ftp"/,
    ],
    [
      { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://[::1' },
      /OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=.*not a URL/,
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'udp' },
      /OTEL_EXPORTER_OTLP_PROTOCOL="udp"/,
    ],
    [{ OTEL_TRACES_EXPORTER: 'zipkin' }, /OTEL_TRACES_EXPORTER="zipkin"/],
  ];
  const results = await Promise.all(cases.map(([env]) => serveOnce(env)));
  results.forEach(({ code, out }, i) => {
    const lines = out.trim().split('\n');
    t.is(code, 2, out);
    t.is(lines.length, 1, out);
    t.regex(lines[0], cases[i][1]);
    t.false(out.includes('meshwire node started'));
  });
});
