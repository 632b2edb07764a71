/**
 * A synchronous OpenTelemetry context manager: context.with(ctx, fn) makes ctx active
 * for the synchronous run of fn, and nothing follows promises or callbacks.
 *
 * Why: the default manager (AsyncLocalStorage) turns on async hooks, which tax every
 * promise and I/O callback in the process whether a span is involved or not. meshwire
 * passes trace context explicitly wherever work continues asynchronously (message headers
 * carry it between nodes, layers and calls), so only the synchronous part of a gRPC
 * handler needs an active span: the server span (src/api/grpc-server-spans.ts) for the message
 * spans it starts and for the trace ids in log lines.
 */
import type { Context, ContextManager } from '@opentelemetry/api';
import { ROOT_CONTEXT } from '@opentelemetry/api';

export class SyncContextManager implements ContextManager {
  private current: Context = ROOT_CONTEXT;

  active(): Context {
    return this.current;
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    const prev = this.current;
    this.current = ctx;
    try {
      return fn.call(thisArg, ...args);
    } finally {
      this.current = prev;
    }
  }

  /** Binding would need to follow callbacks; the synchronous manager leaves them as they are. */
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }

  enable(): this {
    return this;
  }

  disable(): this {
    this.current = ROOT_CONTEXT;
    return this;
  }
}
