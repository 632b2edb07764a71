/**
 * messaging.v1.Messenger handlers: decode and validate requests, call the node, map
 * errors through status.ts. Streams honour gRPC backpressure (write() returning false).
 */
import { quote } from '../common';
import { LATENCY_TRACE, Stage, traceMark } from '../common';
import { Metadata } from '@grpc/grpc-js';
import type {
  handleBidiStreamingCall,
  handleClientStreamingCall,
  handleServerStreamingCall,
  handleUnaryCall,
  ServerDuplexStream,
  ServerWritableStream,
  UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { Message, Target } from '../common';
import {
  InvalidArgumentError,
  NoRespondersError,
  ResourceExhaustedError,
  UnavailableError,
} from '../common';
import type { GatherHandle, MeshNode, SendResult, Subscription } from '../node';
import type { Logger } from '../telemetry';
import { traceDeliveries } from '../telemetry';
import type { ApiGuard } from './auth-guard';
import { ANONYMOUS } from './auth';
import type {
  DeliveryBatch,
  NodeAckMode,
  NodeSlowConsumerPolicy,
  RequestManyRequest,
  RequestManyResponse,
  RequestRequest,
  RequestResponse,
  RequestStreamRequest,
  RequestStreamResponse,
  RespondRequest,
  RespondStreamResponse,
  SendRequest,
  SendResponse,
  SendStreamRequest,
  SendStreamResponse,
  SubscribeRequest,
  WireAckMode,
  WireSlowConsumerPolicy,
  WireTarget,
} from './proto';
import { errorFields, toServiceError } from './status';

/** Replies one RespondStream may have on their way to other nodes at once (then it pauses). */
const MAX_FORWARDING_REPLIES = 1024;

/** Initial-metadata key of Subscribe: sent once the subscription is registered on the node. */
export const SUBSCRIPTION_ID_HEADER = 'meshwire-subscription-id';

/**
 * Replies one RequestMany holds for a client that reads slowly (once write() says the
 * stream is behind); one more ends the call with RESOURCE_EXHAUSTED.
 */
export const MAX_BUFFERED_GATHER_REPLIES = 1024;

/**
 * Payload bytes one RequestMany holds for a slow client: with large replies the count bound
 * alone would let one call pin 1,024 x maxMessageBytes. Past it, RESOURCE_EXHAUSTED too.
 */
export const MAX_BUFFERED_GATHER_BYTES = 16 << 20;

/** Pending requests one RequestStream may have at once. */
export const MAX_PIPELINED_REQUESTS = 4096;

export function toTarget(t: WireTarget | null | undefined): Target {
  if (!t) return undefined;
  if (t.kind === 'peerId' || (t.peerId && !t.address)) {
    if (!t.peerId) throw new InvalidArgumentError('target.peer_id is empty');
    return { peerId: t.peerId };
  }
  if (t.kind === 'address' || t.address) {
    if (!t.address) throw new InvalidArgumentError('target.address is empty: give "host:port"');
    return { address: t.address };
  }
  return undefined;
}

export function toAckMode(a: WireAckMode | undefined): NodeAckMode {
  switch (a) {
    case undefined:
    case 'ACK_MODE_UNSPECIFIED':
    case 'ACCEPTED':
      return 'ACCEPTED';
    case 'DELIVERED':
      return 'DELIVERED';
    default:
      throw new InvalidArgumentError(
        `ack ${JSON.stringify(a)} is not a known ack mode: use ACCEPTED (1) or DELIVERED (2)`
      );
  }
}

export function toPolicy(p: WireSlowConsumerPolicy | undefined): NodeSlowConsumerPolicy {
  switch (p) {
    case undefined:
    case 'SLOW_CONSUMER_POLICY_UNSPECIFIED':
    case 'DROP_OLDEST':
      return 'DROP_OLDEST';
    case 'DROP_NEWEST':
      return 'DROP_NEWEST';
    case 'CLOSE':
      return 'CLOSE';
    default:
      throw new InvalidArgumentError(
        `slow_consumer_policy ${JSON.stringify(p)} is not known: use DROP_OLDEST, DROP_NEWEST or CLOSE`
      );
  }
}

/** Milliseconds left until a gRPC call's deadline (Infinity when none). */
function msUntilDeadline(deadline: Date | number): number {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : Infinity;
}

/** undefined for an infinite time. */
function finiteMs(ms: number): number | undefined {
  return Number.isFinite(ms) ? Math.max(1, ms) : undefined;
}

/** The sooner of timeout_ms and the gRPC deadline; 0 means the node's default. */
function effectiveTimeout(timeoutMs: number, deadline: Date | number, fallback: number): number {
  const fromCall = msUntilDeadline(deadline);
  const requested = timeoutMs > 0 ? timeoutMs : fallback;
  return Math.max(1, Math.min(requested, fromCall));
}

/**
 * Whose key space a Send's idempotency_key is in: the token name when auth is on (keys of
 * different tokens never meet), '' without auth.
 */
function idempotencyScope(guard: ApiGuard | undefined, metadata: Metadata): string {
  const principal = guard?.identity(metadata).principal;
  return principal && principal !== ANONYMOUS ? principal.name : '';
}

export interface ActiveStreams {
  /** Open Subscribe calls, ended on shutdown. */
  subscriptions: Set<Subscription>;
}

export function messengerService(
  node: MeshNode,
  log: Logger,
  active: ActiveStreams,
  /** Topic permissions and limits (auth-guard.ts); none: everything allowed. */
  guard?: ApiGuard
): UntypedServiceImplementation {
  const internal = (err: unknown): void => log.error({ err }, 'internal error in handler');

  const Send: handleUnaryCall<SendRequest, SendResponse> = (call, callback) => {
    try {
      const req = call.request;
      const ack = toAckMode(req.ack);
      guard?.checkPublish(call.metadata, req.message?.topic);
      guard?.budget.admit([req.message as Message]);
      const r = node.send(req.message as Message, toTarget(req.target), {
        ack,
        failFast: req.failFast,
        timeoutMs: finiteMs(msUntilDeadline(call.getDeadline())),
        idempotencyKey: req.idempotencyKey,
        idempotencyScope: req.idempotencyKey ? idempotencyScope(guard, call.metadata) : '',
      });
      if (r instanceof Promise) {
        r.then(
          v =>
            callback(null, { id: v.id, delivered: v.delivered, duplicate: v.duplicate === true }),
          err => callback(toServiceError(err, internal))
        );
      } else {
        callback(null, {
          id: r.id,
          delivered: ack === 'DELIVERED' ? r.delivered : 0,
          duplicate: false,
        });
      }
    } catch (err) {
      callback(toServiceError(err, internal));
    }
  };

  const SendStream: handleBidiStreamingCall<SendStreamRequest, SendStreamResponse> = (
    call: ServerDuplexStream<SendStreamRequest, SendStreamResponse>
  ) => {
    node.telemetry.trackStream(call, 'SendStream');
    let pendingAcks = 0;
    let ended = false;
    const write = (response: SendStreamResponse): void => {
      if (call.cancelled || call.writableEnded) return;
      if (!call.write(response) && !call.isPaused()) {
        // Backpressure: stop reading until the client drains our acks.
        call.pause();
        call.once('drain', () => call.resume());
      }
    };
    call.on('data', (req: SendStreamRequest) => {
      let response: SendStreamResponse;
      try {
        const ack = toAckMode(req.ack);
        const target = toTarget(req.target);
        if (!req.messages || req.messages.length === 0) {
          throw new InvalidArgumentError(`sequence ${req.sequence}: messages is empty`);
        }
        if (guard) {
          guard.checkPublishAll(call.metadata, req.messages);
          guard.budget.admit(req.messages as Message[]);
        }
        const ids = new Array<string>(req.messages.length);
        let delivered = 0;
        let waits: Array<Promise<SendResult>> | undefined;
        const sendOptions = { ack };
        for (let i = 0; i < req.messages.length; i++) {
          const r = node.send(req.messages[i] as Message, target, sendOptions);
          if (r instanceof Promise) (waits ??= []).push(r);
          else {
            ids[i] = r.id;
            delivered += r.delivered;
          }
        }
        if (waits) {
          // DELIVERED to other nodes: ack when every message has been handed over there.
          const seq = req.sequence;
          const messages = req.messages;
          pendingAcks++;
          Promise.all(waits)
            .then(
              results => {
                for (const v of results) delivered += v.delivered;
                write({
                  sequence: seq,
                  ids: messages.map(m => m.id),
                  delivered,
                  errorCode: 0,
                  errorMessage: '',
                });
              },
              err => write({ sequence: seq, ids: [], delivered: 0, ...errorFields(err, internal) })
            )
            .finally(() => {
              pendingAcks--;
              if (ended && pendingAcks === 0) call.end();
            });
          return;
        }
        response = {
          sequence: req.sequence,
          ids,
          delivered: ack === 'DELIVERED' ? delivered : 0,
          errorCode: 0,
          errorMessage: '',
        };
      } catch (err) {
        response = { sequence: req.sequence, ids: [], delivered: 0, ...errorFields(err, internal) };
      }
      write(response);
    });
    call.on('end', () => {
      ended = true;
      if (pendingAcks === 0) call.end();
    });
    call.on('error', () => undefined);
  };

  const Subscribe: handleServerStreamingCall<SubscribeRequest, DeliveryBatch> = (
    call: ServerWritableStream<SubscribeRequest, DeliveryBatch>
  ) => {
    let sub: Subscription;
    try {
      const req = call.request;
      guard?.checkSubscribe(call.metadata, req.topics);
      sub = node.subscribe({
        patterns: req.topics,
        queueGroup: req.queueGroup,
        maxBatch: req.maxBatch,
        policy: toPolicy(req.slowConsumerPolicy),
        bufferSize: req.bufferSize,
      });
    } catch (err) {
      call.emit('error', toServiceError(err, internal));
      return;
    }
    guard?.budget.track(sub, call.request.bufferSize || node.config.subscriberBufferSize);
    active.subscriptions.add(sub);
    node.telemetry.trackStream(call, 'Subscribe');
    let waitingForDrain = false;
    const pump = (): void => {
      if (waitingForDrain) return;
      for (;;) {
        const batch = sub.take();
        if (!batch) return;
        if (LATENCY_TRACE) traceMark(Stage.DELIVERY_WRITE);
        const more = call.write(traceDeliveries(batch, sub));
        if (LATENCY_TRACE) traceMark(Stage.DELIVERY_WRITTEN);
        if (!more) {
          waitingForDrain = true;
          call.once('drain', () => {
            waitingForDrain = false;
            pump();
          });
          return;
        }
      }
    };
    // Response headers say the subscription is live, here and on every connected node: a
    // client waits for them instead of probing. Deliveries wait in the subscription's
    // bounded buffer until then (headers must go first).
    void sub.ready.then(() => {
      if (call.cancelled || sub.closed) return;
      const ready = new Metadata();
      ready.set(SUBSCRIPTION_ID_HEADER, String(sub.id));
      call.sendMetadata(ready);
      sub.onReadable(pump);
    });
    sub.onClose(err => {
      active.subscriptions.delete(sub);
      if (call.cancelled) return;
      if (err) call.emit('error', toServiceError(err, internal));
      else call.end();
    });
    call.on('cancelled', () => sub.close());
    call.on('error', () => sub.close());
  };

  const Request: handleUnaryCall<RequestRequest, RequestResponse> = (call, callback) => {
    if (LATENCY_TRACE) traceMark(Stage.API_REQUEST);
    const abort = new AbortController();
    let settled = false;
    // grpc-js emits 'cancelled' for finished calls too; aborting then would only cost a
    // DOMException with a stack trace per request (~20 us, 12% of a Request's node CPU).
    call.on('cancelled', () => {
      if (!settled) abort.abort();
    });
    let timeoutMs: number;
    try {
      timeoutMs = effectiveTimeout(
        call.request.timeoutMs,
        call.getDeadline(),
        node.config.requestTimeoutMs
      );
    } catch (err) {
      callback(toServiceError(err, internal));
      return;
    }
    const req = call.request;
    let target: Target;
    try {
      target = toTarget(req.target);
      guard?.checkPublish(call.metadata, req.message?.topic);
      guard?.budget.admit([req.message as Message]);
    } catch (err) {
      callback(toServiceError(err, internal));
      return;
    }
    node
      .request(req.message as Message, target, {
        timeoutMs,
        failFast: req.failFast,
        signal: abort.signal,
      })
      .then(
        r => {
          settled = true;
          callback(null, { reply: r.reply, responderPeer: r.responderPeer });
          if (LATENCY_TRACE) traceMark(Stage.REPLY_WRITTEN);
        },
        err => {
          settled = true;
          callback(toServiceError(err, internal));
        }
      );
  };

  const RequestStream: handleBidiStreamingCall<RequestStreamRequest, RequestStreamResponse> = (
    call: ServerDuplexStream<RequestStreamRequest, RequestStreamResponse>
  ) => {
    node.telemetry.trackStream(call, 'RequestStream');
    const pending = new Set<string>();
    const abort = new AbortController();
    let ended = false;
    const finishIfDone = (): void => {
      if (ended && pending.size === 0) call.end();
    };
    const write = (r: RequestStreamResponse): void => {
      if (call.cancelled || call.writableEnded) return;
      if (!call.write(r) && !call.isPaused()) {
        call.pause();
        call.once('drain', () => call.resume());
      }
    };
    call.on('data', (req: RequestStreamRequest) => {
      const id = req.requestId;
      const fail = (err: unknown): void =>
        write({ requestId: id, reply: null, responderPeer: '', ...errorFields(err, internal) });
      if (!id) {
        fail(new InvalidArgumentError('request_id is empty: choose an id to match the reply'));
        return;
      }
      if (pending.has(id)) {
        fail(new InvalidArgumentError(`request_id ${quote(id)} is already pending on this stream`));
        return;
      }
      if (pending.size >= MAX_PIPELINED_REQUESTS) {
        fail(
          new ResourceExhaustedError(
            `${MAX_PIPELINED_REQUESTS} requests already pending on this stream; wait for replies`
          )
        );
        return;
      }
      let target: Target;
      let release: () => void = () => undefined;
      try {
        target = toTarget(req.target);
        if (guard) {
          guard.checkPublish(call.metadata, req.message?.topic);
          guard.budget.admit([req.message as Message]);
          release = guard.acquireInFlight(call.metadata);
        }
      } catch (err) {
        fail(err);
        return;
      }
      pending.add(id);
      const timeoutMs = effectiveTimeout(
        req.timeoutMs,
        call.getDeadline(),
        node.config.requestTimeoutMs
      );
      const settle = (): void => {
        release();
        pending.delete(id);
        finishIfDone();
      };
      // then(ok, fail) with the clean-up in both, not then().finally(): one promise and
      // one microtask hop fewer per request
      node.request(req.message as Message, target, { timeoutMs, signal: abort.signal }).then(
        r => {
          try {
            write({
              requestId: id,
              reply: r.reply,
              responderPeer: r.responderPeer,
              errorCode: 0,
              errorMessage: '',
            });
          } finally {
            settle();
          }
        },
        (err: unknown) => {
          try {
            fail(err);
          } finally {
            settle();
          }
        }
      );
    });
    call.on('end', () => {
      ended = true;
      finishIfDone();
    });
    call.on('cancelled', () => abort.abort());
    call.on('error', () => abort.abort());
  };

  const Respond: handleUnaryCall<RespondRequest, Record<string, never>> = (call, callback) => {
    try {
      guard?.checkRespond(call.metadata);
      const forwarded = node.respond(call.request.replyTo, call.request.message as Message);
      if (!forwarded) {
        callback(null, {});
        return;
      }
      // The token names another node: the reply is forwarded there first.
      forwarded.then(
        () => callback(null, {}),
        err => callback(toServiceError(err, internal))
      );
    } catch (err) {
      callback(toServiceError(err, internal));
    }
  };

  const RespondStream: handleClientStreamingCall<RespondRequest, RespondStreamResponse> = (
    call,
    callback
  ) => {
    try {
      guard?.checkRespond(call.metadata);
    } catch (err) {
      callback(toServiceError(err, internal));
      return;
    }
    node.telemetry.trackStream(call, 'RespondStream', ['end', 'cancelled', 'close']);
    let accepted = 0;
    let rejected = 0;
    /** Replies being forwarded to the nodes that issued their tokens. */
    let forwarding = 0;
    let ended = false;
    const finish = (): void => {
      if (ended && forwarding === 0) callback(null, { accepted, rejected });
    };
    call.on('data', (req: RespondRequest) => {
      if (LATENCY_TRACE) traceMark(Stage.API_RESPOND);
      try {
        const forwarded = node.respond(req.replyTo, req.message as Message);
        if (!forwarded) {
          accepted++;
          return;
        }
        forwarding++;
        if (forwarding >= MAX_FORWARDING_REPLIES && !call.isPaused()) call.pause();
        forwarded
          .then(
            () => accepted++,
            () => rejected++
          )
          .finally(() => {
            forwarding--;
            if (call.isPaused() && forwarding < MAX_FORWARDING_REPLIES) call.resume();
            finish();
          });
      } catch {
        // Unknown or expired tokens are normal for late replies: counted, not fatal.
        rejected++;
      }
    });
    call.on('end', () => {
      ended = true;
      finish();
    });
    call.on('error', () => undefined);
  };

  /** Payload bytes of a reply held for a slow RequestMany client. */
  const replyBytes = (r: RequestManyResponse): number =>
    (r.reply as Message | undefined)?.payload.length ?? 0;

  const RequestMany: handleServerStreamingCall<RequestManyRequest, RequestManyResponse> = (
    call: ServerWritableStream<RequestManyRequest, RequestManyResponse>
  ) => {
    const req = call.request;
    let handle: GatherHandle | undefined;
    let over = false;
    /** Replies held back while write() says the client is behind (bounded). */
    const waiting: RequestManyResponse[] = [];
    let waitingBytes = 0;
    let blocked = false;
    const fail = (err: Error): void => {
      if (!call.cancelled) call.emit('error', toServiceError(err, internal));
    };
    const flush = (): void => {
      blocked = false;
      while (waiting.length > 0 && !call.cancelled) {
        const next = waiting.shift() as RequestManyResponse;
        waitingBytes -= replyBytes(next);
        if (!call.write(next)) {
          blocked = true;
          call.once('drain', flush);
          return;
        }
      }
    };
    try {
      guard?.checkPublish(call.metadata, req.message?.topic);
      guard?.budget.admit([req.message as Message]);
      node.telemetry.trackStream(call, 'RequestMany');
      handle = node.requestMany(
        req.message as Message,
        toTarget(req.target),
        { timeoutMs: req.timeoutMs, maxReplies: req.maxReplies, stallMs: req.stallMs },
        {
          reply: r => {
            if (over || call.cancelled) return;
            const response = { reply: r.reply, responderPeer: r.responderPeer };
            if (blocked) {
              // gRPC flow control holds the client's replies back: keep a bounded number.
              const bytes = replyBytes(response);
              if (
                waiting.length >= MAX_BUFFERED_GATHER_REPLIES ||
                waitingBytes + bytes > MAX_BUFFERED_GATHER_BYTES
              ) {
                handle?.cancel('slow_client');
              } else {
                waiting.push(response);
                waitingBytes += bytes;
              }
              return;
            }
            if (!call.write(response)) {
              blocked = true;
              call.once('drain', flush);
            }
          },
          end: (reason, detail) => {
            over = true;
            if (call.cancelled) return;
            switch (reason) {
              case 'no_responders':
                fail(
                  new NoRespondersError(
                    detail ?? `no responders for ${quote(req.message?.topic ?? '')}`
                  )
                );
                return;
              case 'slow_client':
                fail(
                  new ResourceExhaustedError(
                    `request_many: ${waiting.length} replies (${waitingBytes} bytes; at most ${MAX_BUFFERED_GATHER_REPLIES} replies or ${MAX_BUFFERED_GATHER_BYTES} bytes) wait for this client, which reads too slowly; the gather ended`
                  )
                );
                return;
              case 'node_stopped':
                fail(new UnavailableError(`node ${node.id} stopped during the RequestMany`));
                return;
              case 'cancelled':
                return;
              default:
                // What waits goes out first (the stream buffers it; at most the bound).
                for (const w of waiting.splice(0)) call.write(w);
                call.end();
            }
          },
        }
      );
    } catch (err) {
      fail(err as Error);
      return;
    }
    call.on('cancelled', () => handle?.cancel());
    call.on('error', () => handle?.cancel());
  };

  return {
    Send,
    SendStream,
    Subscribe,
    Request,
    RequestStream,
    Respond,
    RespondStream,
    RequestMany,
  };
}
