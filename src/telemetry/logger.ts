/**
 * pino JSON logs. Every line logged inside an active span carries trace_id and span_id,
 * so logs and traces join up. Components log through child loggers.
 */
import { trace } from '@opentelemetry/api';
import pino from 'pino';

export type Logger = pino.Logger;

export interface LoggerInit {
  /** @default 'info' */
  level?: string;
  /** Fields on every line, e.g. { node_id }. */
  base?: Record<string, unknown>;
  /** Where lines go. @default stdout, written synchronously */
  destination?: pino.DestinationStream;
}

function traceMixin(): Record<string, string> {
  const span = trace.getActiveSpan();
  if (!span) return {};
  const ctx = span.spanContext();
  return { trace_id: ctx.traceId, span_id: ctx.spanId };
}

export function createLogger(init: LoggerInit = {}): Logger {
  const options: pino.LoggerOptions = {
    level: init.level ?? 'info',
    base: { ...init.base },
    mixin: traceMixin,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: label => ({ level: label }) },
  };
  // Synchronous stdout: lines keep their order up to process.exit (an asynchronous stream
  // flushed at exit could write "meshwire node stopped" before an earlier "draining").
  return pino(options, init.destination ?? pino.destination({ dest: 1, sync: true }));
}

/** A logger that drops everything (tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
