/**
 * RpcConnection: request/response/oneway over one mux channel (a Channel with
 * its response table). Outgoing requests are tracked in a RequestTable; incoming ones
 * go to one handler, with the caller's remaining deadline so that work nobody waits for
 * any more is abandoned and its response not sent.
 */
import type { Clock, DropLedger, MeshwireError, Timer } from '../common';
import { LATENCY_TRACE, Stage, traceCommit, traceMark } from '../common';
import {
  CancelledError,
  ConnectionClosedError,
  DeadlineExceededError,
  DropCounter,
  InvalidArgumentError,
  systemClock,
} from '../common';
import type { Mux } from '../mux';
import {
  DEFAULT_MAX_CONCURRENT_HANDLERS,
  DEFAULT_MAX_IN_FLIGHT,
  DEFAULT_REQUEST_TIMEOUT_MS,
} from './constants';
import { decodeEnvelope } from './envelope-decode';
import { encodeEnvelope } from './envelope-encode';
import type { Envelope, EnvelopeInit } from './envelope-types';
import { EnvelopeKind } from './envelope-types';
import type { PendingCall } from './request-table';
import { RequestTable } from './request-table';
import { errorOfStatus, StatusCode, statusOfError } from './status';

export interface RpcConnectionInit {
  /** The mux channel this rpc uses (both sides the same). */
  channelId: number;
  /** Where this connection's drops are recorded (the node's ledger). @default none */
  drops?: DropLedger;
  /** Outgoing requests in flight at most; more get ResourceExhaustedError. @default DEFAULT_MAX_IN_FLIGHT */
  maxInFlight?: number;
  /** Incoming requests being handled at most; more are answered RESOURCE_EXHAUSTED. @default DEFAULT_MAX_CONCURRENT_HANDLERS */
  maxConcurrentHandlers?: number;
  /** Timeout of a request given neither timeoutMs nor deadline. @default DEFAULT_REQUEST_TIMEOUT_MS */
  defaultTimeoutMs?: number;
  /** @default systemClock (use the same clock as the mux) */
  clock?: Clock;
  /** Capture the caller's stack at issue time for errors that come later. @default true */
  captureStacks?: boolean;
}

export interface RequestOptions {
  /** Timeout counted from when the request is written to the connection. */
  timeoutMs?: number;
  /** Absolute deadline on the rpc's clock (`clock.now()` scale): a hard stop from now. */
  deadline?: number;
  /** Aborting fails the call with CancelledError and returns its permit at once. */
  signal?: AbortSignal;
}

/** What a handler learns besides the request. */
export interface HandlerContext {
  /** Local clock time after which the caller no longer waits; undefined if none sent. */
  readonly deadline: number | undefined;
  /** Aborted when the caller's deadline passes or the connection closes. */
  readonly signal: AbortSignal;
}

/**
 * Handles an incoming request or oneway. For a request, the returned envelope (or an
 * empty OK one) is the response; a thrown error becomes a response with its status.
 */
export type RpcHandler = (
  req: Envelope,
  ctx: HandlerContext
) => Promise<EnvelopeInit | void> | EnvelopeInit | void;

export type RpcDropReason =
  | 'late_response'
  | 'response_after_deadline'
  | 'handler_limit'
  | 'oneway_handler_error'
  | 'response_send_failed'
  | 'malformed_envelope';

/** Lazily built context: the AbortController and its timer exist only if asked for. */
class Ctx implements HandlerContext {
  readonly deadline: number | undefined;
  private ac?: AbortController;
  private timer?: Timer;
  private readonly clock: Clock;
  done = false;
  /** The caller sent CANCEL: no response goes back. */
  cancelled = false;
  private closedErr?: Error;

  constructor(clock: Clock, deadline: number | undefined) {
    this.clock = clock;
    this.deadline = deadline;
  }

  get signal(): AbortSignal {
    if (!this.ac) {
      this.ac = new AbortController();
      if (this.closedErr) this.ac.abort(this.closedErr);
      else if (this.deadline !== undefined && !this.done) {
        const ac = this.ac;
        this.timer = this.clock.setTimer(this.deadline - this.clock.now(), () =>
          ac.abort(new DeadlineExceededError('caller deadline passed'))
        );
      }
    }
    return this.ac.signal;
  }

  abortClosed(err: Error): void {
    this.closedErr = err;
    this.timer?.cancel();
    this.ac?.abort(err);
  }

  finish(): void {
    this.done = true;
    this.timer?.cancel();
  }
}

export class RpcConnection {
  readonly drops: DropCounter<RpcDropReason>;
  private readonly mux: Mux;
  private readonly channelId: number;
  private readonly clock: Clock;
  private readonly table: RequestTable<Envelope>;
  private readonly maxConcurrentHandlers: number;
  private readonly defaultTimeoutMs: number;
  private readonly captureStacks: boolean;
  private readonly maxMessageBytes: number;
  private handler?: RpcHandler;
  /** Incoming requests being handled, by request id (a CANCEL names one). */
  private readonly active = new Map<number, Ctx>();
  private closeErr?: MeshwireError;

  constructor(mux: Mux, init: RpcConnectionInit) {
    this.mux = mux;
    this.channelId = init.channelId;
    this.drops = new DropCounter('rpc', init.drops);
    this.clock = init.clock ?? systemClock;
    const maxInFlight = init.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    if (!Number.isInteger(maxInFlight) || maxInFlight <= 0) {
      throw new InvalidArgumentError(`maxInFlight must be a positive integer, got ${maxInFlight}`);
    }
    this.table = new RequestTable({ clock: this.clock, maxInFlight });
    this.maxConcurrentHandlers = init.maxConcurrentHandlers ?? DEFAULT_MAX_CONCURRENT_HANDLERS;
    this.defaultTimeoutMs = init.defaultTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.captureStacks = init.captureStacks ?? true;
    this.maxMessageBytes = mux.maxMessageBytes(this.channelId);
    mux.on('message', this.onMessage);
    mux.once('close', this.onMuxClose);
    if (mux.closed) this.onMuxClose(mux.closeError as MeshwireError);
  }

  /** Outgoing requests not yet settled (= permits in use). */
  get inFlight(): number {
    return this.table.inFlight;
  }

  /** Incoming requests whose handler is still running. */
  get handling(): number {
    return this.active.size;
  }

  get closed(): boolean {
    return this.closeErr !== undefined;
  }

  setHandler(handler: RpcHandler): void {
    this.handler = handler;
  }

  /**
   * Sends a request and resolves with the response envelope (status OK), or rejects:
   * ResourceExhaustedError (maxInFlight reached), DeadlineExceededError, CancelledError,
   * ConnectionClosedError (the connection closed while pending: at once, not at the
   * timeout), or the error matching a non-OK response status.
   */
  request(env: EnvelopeInit, opts: RequestOptions = {}): Promise<Envelope> {
    if (this.closeErr) {
      return Promise.reject(
        new ConnectionClosedError(`rpc closed: ${this.closeErr.message}`, { cause: this.closeErr })
      );
    }
    if (opts.signal?.aborted)
      return Promise.reject(new CancelledError('request aborted before it was sent'));
    const timeoutMs =
      opts.timeoutMs ?? (opts.deadline === undefined ? this.defaultTimeoutMs : undefined);
    if (opts.deadline !== undefined && opts.deadline <= this.clock.now()) {
      return Promise.reject(
        new DeadlineExceededError('deadline already passed before the request was sent')
      );
    }
    let call: PendingCall<Envelope>;
    try {
      call = this.table.add({
        timeoutMs,
        deadline: opts.deadline,
        signal: opts.signal,
        captureStack: this.captureStacks,
        onGiveUp: this.sendCancel,
      });
    } catch (err) {
      return Promise.reject(err as Error);
    }
    let buf: Buffer;
    try {
      buf = encodeEnvelope(EnvelopeKind.REQUEST, call.id, call.remainingMs(this.clock.now()), env);
      if (LATENCY_TRACE) traceMark(Stage.RPC_ENCODED);
    } catch (err) {
      call.fail(err as Error);
      return call.promise;
    }
    const onWritten = () => call.markWritten();
    if (this.mux.hasRoom(this.channelId, buf.length)) {
      try {
        this.mux.trySend(this.channelId, buf, { onWritten });
      } catch (err) {
        // e.g. a body above the channel's maxMessageBytes: the caller's error, not a leak.
        call.fail(err as Error);
      }
    } else {
      this.mux
        .send(this.channelId, buf, { signal: opts.signal, onWritten })
        .catch((err: Error) => call.fail(err));
    }
    return call.promise;
  }

  /** Tells the far side that the caller gave up on a request it has (best effort). */
  private readonly sendCancel = (call: PendingCall<unknown>, err: MeshwireError): void => {
    if (this.closeErr) return;
    const status =
      err.code === 'DEADLINE_EXCEEDED' ? StatusCode.DEADLINE_EXCEEDED : StatusCode.CANCELLED;
    try {
      // the caller already gave up: the CANCEL goes with the turn's batch (mux trySend)
      this.mux.trySend(
        this.channelId,
        encodeEnvelope(EnvelopeKind.CANCEL, call.id, 0, { status }),
        {
          batch: true,
        }
      );
    } catch {
      // No room: the far side's own deadline ends the request soon after.
    }
  };

  /** Sends a oneway envelope; resolves once queued (waits for room, like mux.send). */
  oneway(env: EnvelopeInit, opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.closeErr) {
      return Promise.reject(
        new ConnectionClosedError(`rpc closed: ${this.closeErr.message}`, { cause: this.closeErr })
      );
    }
    let buf: Buffer;
    try {
      buf = encodeEnvelope(EnvelopeKind.ONEWAY, 0, 0, env);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return this.mux.send(this.channelId, buf, opts);
  }

  /** Sends a oneway only if the channel has room now; false otherwise. */
  tryOneway(env: EnvelopeInit): boolean {
    if (this.closeErr) return false;
    return this.mux.trySend(this.channelId, encodeEnvelope(EnvelopeKind.ONEWAY, 0, 0, env));
  }

  /**
   * Closes this rpc (not the mux, which may carry other channels): every pending call
   * fails at once with ConnectionClosedError, running handlers see their signal abort,
   * and later calls are refused. Idempotent.
   */
  close(err?: Error): void {
    if (this.closeErr) return;
    const cause = err instanceof Error ? err : undefined;
    this.closeErr = new ConnectionClosedError(
      `rpc closed: ${cause?.message ?? 'closed by application'}`,
      { cause }
    );
    this.shutdown(this.closeErr);
  }

  private readonly onMuxClose = (err: MeshwireError): void => {
    if (this.closeErr) return;
    this.closeErr = err;
    this.shutdown(err);
  };

  private shutdown(err: MeshwireError): void {
    this.mux.off('message', this.onMessage);
    this.table.closeAll(
      () => new ConnectionClosedError(`request failed: ${err.message}`, { cause: err })
    );
    for (const ctx of this.active.values()) ctx.abortClosed(err);
  }

  private readonly onMessage = (channelId: number, payload: Buffer): void => {
    if (channelId !== this.channelId) return;
    let env: Envelope;
    try {
      env = decodeEnvelope(payload);
      if (LATENCY_TRACE) traceCommit(Stage.RPC_DECODED);
    } catch (err) {
      // A bad envelope breaks the protocol of this connection: close it, like the mux does.
      this.drops.add('malformed_envelope');
      this.mux.close(`malformed rpc envelope: ${(err as Error).message}`);
      return;
    }
    switch (env.kind) {
      case EnvelopeKind.RESPONSE: {
        const call = this.table.get(env.id);
        if (!call) {
          this.drops.add('late_response');
          return;
        }
        if (env.status === StatusCode.OK) call.resolve(env);
        else call.fail(call.issueError(errorOfStatus(env.status, env.statusMessage)));
        return;
      }
      case EnvelopeKind.REQUEST:
        this.handleRequest(env);
        return;
      case EnvelopeKind.ONEWAY:
        this.handleOneway(env);
        return;
      case EnvelopeKind.CANCEL: {
        const ctx = this.active.get(env.id);
        if (!ctx) return;
        ctx.cancelled = true;
        ctx.abortClosed(
          env.status === StatusCode.DEADLINE_EXCEEDED
            ? new DeadlineExceededError("the caller's deadline passed")
            : new CancelledError('the caller cancelled the request')
        );
        return;
      }
    }
  };

  private handleOneway(env: Envelope): void {
    const h = this.handler;
    if (!h) {
      this.drops.add('oneway_handler_error');
      return;
    }
    const ctx = new Ctx(this.clock, undefined);
    try {
      const r = h(env, ctx);
      if (r && typeof (r as Promise<unknown>).then === 'function') {
        (r as Promise<unknown>).then(undefined, () => this.drops.add('oneway_handler_error'));
      }
    } catch {
      this.drops.add('oneway_handler_error');
    }
  }

  private handleRequest(env: Envelope): void {
    if (this.active.size >= this.maxConcurrentHandlers) {
      this.drops.add('handler_limit');
      this.respond(env.id, {
        status: StatusCode.RESOURCE_EXHAUSTED,
        statusMessage: `${this.active.size} requests already being handled (limit ${this.maxConcurrentHandlers})`,
      });
      return;
    }
    const h = this.handler;
    if (!h) {
      this.respond(env.id, {
        status: StatusCode.NOT_FOUND,
        statusMessage: 'no request handler on this connection',
      });
      return;
    }
    const deadline = env.timeoutMs > 0 ? this.clock.now() + env.timeoutMs : undefined;
    const ctx = new Ctx(this.clock, deadline);
    this.active.set(env.id, ctx);
    let result: Promise<EnvelopeInit | void> | EnvelopeInit | void;
    try {
      result = h(env, ctx);
    } catch (err) {
      this.finishRequest(env.id, ctx, undefined, err);
      return;
    }
    if (result && typeof (result as Promise<unknown>).then === 'function') {
      (result as Promise<EnvelopeInit | void>).then(
        r => this.finishRequest(env.id, ctx, r, undefined),
        (err: unknown) => this.finishRequest(env.id, ctx, undefined, err)
      );
    } else {
      this.finishRequest(env.id, ctx, result as EnvelopeInit | void, undefined);
    }
  }

  private finishRequest(id: number, ctx: Ctx, r: EnvelopeInit | void, err: unknown): void {
    ctx.finish();
    if (this.active.get(id) === ctx) this.active.delete(id);
    if (this.closeErr || ctx.cancelled) return;
    if (ctx.deadline !== undefined && this.clock.now() > ctx.deadline) {
      // The caller has already given up: a response would only be counted late there.
      this.drops.add('response_after_deadline');
      return;
    }
    if (err !== undefined) {
      this.respond(id, {
        status: statusOfError(err),
        statusMessage: err instanceof Error ? err.message : String(err),
      });
      return;
    }
    this.respond(id, r ?? {});
  }

  private respond(id: number, env: EnvelopeInit): void {
    let buf: Buffer;
    try {
      buf = encodeEnvelope(EnvelopeKind.RESPONSE, id, 0, env);
      if (LATENCY_TRACE) traceMark(Stage.RPC_ENCODED);
    } catch (err) {
      buf = this.errorResponse(id, `response could not be encoded: ${(err as Error).message}`);
    }
    if (buf.length > this.maxMessageBytes) {
      buf = this.errorResponse(
        id,
        `response of ${buf.length} bytes is above the channel's limit of ${this.maxMessageBytes}`
      );
    }
    if (this.mux.hasRoom(this.channelId, buf.length)) {
      this.mux.trySend(this.channelId, buf);
      return;
    }
    this.mux.send(this.channelId, buf).catch(() => this.drops.add('response_send_failed'));
  }

  private errorResponse(id: number, message: string): Buffer {
    return encodeEnvelope(EnvelopeKind.RESPONSE, id, 0, {
      status: StatusCode.INTERNAL,
      statusMessage: message,
    });
  }
}
