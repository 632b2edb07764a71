/** Logging and tracing for a node process (`meshwire serve`), loaded before the node itself. */
export { createLogger, startTracing } from '../telemetry';
