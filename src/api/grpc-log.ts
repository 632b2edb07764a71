/**
 * grpc-js logs through its own logger, which writes raw "E ..." / "I ..." / "D ..." lines
 * to stderr. routeGrpcLogs hands them to pino instead: one JSON line each, at the matching
 * level, with component "grpc-js". Process-wide (grpc-js has one logger).
 */
import { format } from 'node:util';
import { logVerbosity, setLogger, setLogVerbosity } from '@grpc/grpc-js';
import type { Logger } from '../telemetry';

/** grpc-js verbosity for a pino level: grpc-js then formats nothing we would drop. */
function verbosityFor(level: string): logVerbosity {
  switch (level) {
    case 'trace':
    case 'debug':
      return logVerbosity.DEBUG;
    case 'info':
      return logVerbosity.INFO;
    case 'silent':
      return logVerbosity.NONE;
    default:
      return logVerbosity.ERROR;
  }
}

export function routeGrpcLogs(log: Logger): void {
  const child = log.child({ component: 'grpc-js' });
  // grpc-js calls console-style: a message and optional extra arguments.
  const line = (message: unknown, rest: unknown[]): string =>
    format(message, ...rest).replace(/\s+$/, '');
  setLogger({
    error: (message?: unknown, ...rest: unknown[]) => child.error(line(message, rest)),
    info: (message?: unknown, ...rest: unknown[]) => child.info(line(message, rest)),
    debug: (message?: unknown, ...rest: unknown[]) => child.debug(line(message, rest)),
  });
  // GRPC_VERBOSITY / GRPC_NODE_VERBOSITY, when set, still choose what grpc-js reports.
  if (!process.env.GRPC_VERBOSITY && !process.env.GRPC_NODE_VERBOSITY) {
    setLogVerbosity(verbosityFor(log.level));
  }
}
