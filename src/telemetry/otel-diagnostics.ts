/**
 * OpenTelemetry's own diagnostics, made visible: the SDK's diag messages and its
 * export errors become pino JSON lines (one line each, with level, time and node_id from
 * the logger), rate-limited per kind so a dead collector cannot flood the log.
 */
import type { DiagLogger } from '@opentelemetry/api';
import { DiagLogLevel, diag } from '@opentelemetry/api';
import { setGlobalErrorHandler } from '@opentelemetry/core';
import type { Logger } from './logger';

/** At most one line per kind in this window (the rest are counted in the next line). */
export const DIAG_INTERVAL_MS = 30_000;
/** Distinct kinds tracked; any beyond share the kind "other" (the map stays bounded). */
export const MAX_DIAG_KINDS = 128;

type Level = 'error' | 'warn' | 'info' | 'debug' | 'trace';

/**
 * Logs at most one line per kind per interval. A line after a quiet period carries
 * `suppressed`: how many of its kind were not logged since the previous line.
 */
export class RateLimitedLog {
  private readonly kinds = new Map<string, { lastMs: number; suppressed: number }>();
  /** Lines not logged because of the limit, all kinds (tests, metrics). */
  suppressedTotal = 0;

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = DIAG_INTERVAL_MS,
    private readonly now: () => number = Date.now
  ) {}

  /** Returns true when the line was written. */
  write(kind: string, level: Level, fields: Record<string, unknown>, msg: string): boolean {
    let key = kind;
    if (!this.kinds.has(key) && this.kinds.size >= MAX_DIAG_KINDS) key = 'other';
    const t = this.now();
    const state = this.kinds.get(key);
    if (state && t - state.lastMs < this.intervalMs) {
      state.suppressed++;
      this.suppressedTotal++;
      return false;
    }
    const suppressed = state?.suppressed ?? 0;
    this.kinds.set(key, { lastMs: t, suppressed: 0 });
    this.log[level]({ kind: key, ...fields, ...(suppressed > 0 ? { suppressed } : {}) }, msg);
    return true;
  }
}

/** One printable string for a diag argument (an Error keeps its name, message and code). */
function describe(arg: unknown): unknown {
  if (arg instanceof Error) {
    const code = (arg as { code?: unknown }).code;
    return code === undefined
      ? `${arg.name}: ${arg.message}`
      : `${arg.name}: ${arg.message} (code ${String(code)})`;
  }
  if (typeof arg === 'object' && arg !== null) {
    try {
      return JSON.parse(JSON.stringify(arg)) as unknown;
    } catch {
      return String(arg);
    }
  }
  return arg;
}

/** The diag message with numbers masked and cut short: the rate-limit kind. */
function kindOf(level: string, message: string): string {
  return `otel_${level}:${message.replace(/\d+/g, '#').slice(0, 80)}`;
}

/** OTEL_LOG_LEVEL (none, error, warn, info, debug, verbose, all) -> DiagLogLevel. */
export function diagLevelFromEnv(value: string | undefined): DiagLogLevel {
  switch ((value ?? '').trim().toLowerCase()) {
    case 'none':
      return DiagLogLevel.NONE;
    case 'error':
      return DiagLogLevel.ERROR;
    case '':
    case 'warn':
      return DiagLogLevel.WARN;
    case 'info':
      return DiagLogLevel.INFO;
    case 'debug':
      return DiagLogLevel.DEBUG;
    case 'verbose':
      return DiagLogLevel.VERBOSE;
    case 'all':
      return DiagLogLevel.ALL;
    default:
      return DiagLogLevel.WARN;
  }
}

/** The pino level that lets every diag line of `level` through. */
function pinoLevelFor(level: DiagLogLevel): string {
  if (level <= DiagLogLevel.NONE) return 'silent';
  if (level <= DiagLogLevel.ERROR) return 'error';
  if (level <= DiagLogLevel.WARN) return 'warn';
  if (level <= DiagLogLevel.INFO) return 'info';
  if (level <= DiagLogLevel.DEBUG) return 'debug';
  return 'trace';
}

/** A DiagLogger writing through `limited` (one JSON line per message). */
export function pinoDiagLogger(limited: RateLimitedLog): DiagLogger {
  const at =
    (diagLevel: string, level: Level) =>
    (message: string, ...args: unknown[]): void => {
      const fields: Record<string, unknown> = { otel_level: diagLevel };
      if (args.length > 0) fields.args = args.map(describe);
      limited.write(kindOf(diagLevel, message), level, fields, message);
    };
  return {
    error: at('error', 'error'),
    warn: at('warn', 'warn'),
    info: at('info', 'info'),
    debug: at('debug', 'debug'),
    verbose: at('verbose', 'trace'),
  };
}

/** Where spans go, for the lines about failed exports. */
export interface ExportTarget {
  exporter: string;
  endpoint?: string;
  protocol?: string;
}

export interface OtelDiagnostics {
  readonly limited: RateLimitedLog;
  /** Export failures seen by the global error handler. */
  readonly exportErrors: () => number;
}

let exportErrorCount = 0;

/** Export failures reported by the OpenTelemetry SDK so far (the metrics read it). */
export function otelExportErrors(): number {
  return exportErrorCount;
}

/**
 * Routes diag (at OTEL_LOG_LEVEL, default warn) and the SDK's global error handler (span
 * export failures: the batch processor reports each failed batch there) into `log`.
 */
export function routeOtelDiagnostics(
  log: Logger,
  target: ExportTarget,
  env: Record<string, string | undefined> = process.env,
  intervalMs = DIAG_INTERVAL_MS
): OtelDiagnostics {
  const level = diagLevelFromEnv(env.OTEL_LOG_LEVEL);
  const otelLog = log.child({ component: 'otel' }, { level: pinoLevelFor(level) });
  const limited = new RateLimitedLog(otelLog, intervalMs);
  diag.setLogger(pinoDiagLogger(limited), { logLevel: level, suppressOverrideMessage: true });
  // Export errors are logged whatever OTEL_LOG_LEVEL says (unless it is "none").
  const errors = new RateLimitedLog(
    log.child({ component: 'otel' }, { level: level <= DiagLogLevel.NONE ? 'silent' : 'error' }),
    intervalMs
  );
  setGlobalErrorHandler((err: unknown) => {
    exportErrorCount++;
    const detail = describe(err);
    errors.write(
      'trace_export',
      'error',
      { ...target, error: typeof detail === 'string' ? detail : JSON.stringify(detail) },
      `trace export to ${target.endpoint ?? target.exporter} failed`
    );
  });
  return { limited, exportErrors: otelExportErrors };
}
