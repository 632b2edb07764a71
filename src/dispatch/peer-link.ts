/**
 * One live connection to a peer node: the mux with a control and a data channel, an rpc
 * over each, and the HELLO that tells both sides who is at the other end. Outbound links
 * carry our sends and requests; inbound links carry the peer's (and our replies).
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { Clock, DropLedger, Message } from '../common';
import { FailedPreconditionError, ProtocolError, UnavailableError } from '../common';
import { LATENCY_TRACE, Stage, traceMark } from '../common';
import { Mux } from '../mux';
import type { Envelope, EnvelopeInit, HandlerContext } from '../rpc';
import { RpcConnection } from '../rpc';
import type { DeliveryScope, Hello, InterestUpdate, PeerCallOp } from './wire';
import {
  CHANNEL_CONTROL,
  CHANNEL_DATA,
  Op,
  decodeCount,
  decodeHello,
  decodeInterest,
  decodeBatch,
  decodeMessageBody,
  BatchEncoder,
  encodeCount,
  encodeHello,
  encodeInterest,
  encodeMessageBody,
  encodeRespond,
  decodeRespond,
  ALL_SUBSCRIBERS,
} from './wire';

/** What a link needs from the cluster above it (implemented by Cluster). */
export interface LinkHandler {
  readonly localId: string;
  /** This run of the local process (HELLO's instance). */
  readonly instanceId: string;
  /** Inbound HELLO: throw to refuse the connection. */
  onHello(link: PeerLink, hello: Hello): void;
  onInterest(link: PeerLink, update: InterestUpdate): void;
  /**
   * A forwarded message: deliver locally, return how many subscriptions took it. `seq` is
   * the sender's sequence number (-1: none) and `dedupOrigin` names the sending process.
   */
  onMessage(
    message: Message,
    origin: string,
    scope: DeliveryScope,
    seq: number,
    dedupOrigin: string
  ): number;
  /** A reply a peer's client gave for a request this node issued the token of. */
  onRespond(token: string, reply: Message, responderPeer: string): void | Promise<void>;
  /**
   * A node-layer call from the peer (idempotency claims): resolves with the answer body.
   * `timeoutMs` is the caller's remaining deadline.
   */
  onPeerCall(op: PeerCallOp, body: Buffer, peerId: string, timeoutMs: number): Promise<Buffer>;
  /** A request from the peer; resolves with the reply. */
  onRequest(
    message: Message,
    origin: string,
    timeoutMs: number,
    signal: AbortSignal
  ): Promise<{ reply: Message; responderPeer: string }>;
}

export interface PeerLinkInit {
  role: 'outbound' | 'inbound';
  handler: LinkHandler;
  /** The id we expect at the far end (outbound to a peer id), '' when dialling an address. */
  expectedId?: string;
  clock?: Clock;
  /** Largest message body crossing the link. */
  maxMessageBytes: number;
  /** Requests and DELIVERED sends in flight on this link at most. @default 4096 */
  maxInFlight?: number;
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  /** Counts messages lost because a batch could not be handed to the connection. */
  onDrop?(reason: 'link_send_failed', n: number): void;
  /** Where the link's mux and rpc connections record their drops. @default none */
  drops?: DropLedger;
}

export interface PeerLinkEvents {
  close: [err: Error];
}

/** Timeout of a forwarded request whose envelope carries none. */
const DEFAULT_REMOTE_TIMEOUT_MS = 30_000;

/** How long an interest update may wait for the peer's acknowledgement. */
const INTEREST_ACK_TIMEOUT_MS = 2000;

/** Bytes of messages gathered into one MESSAGE_BATCH at most. */
const MAX_BATCH_BYTES = 256 * 1024;

/** Room above the largest payload for the message body framing and headers. */
const BODY_OVERHEAD = 64 * 1024;

export class PeerLink extends EventEmitter<PeerLinkEvents> {
  readonly role: 'outbound' | 'inbound';
  readonly duplex: Duplex;
  /** The peer's node id, known once HELLO is done. */
  peerId = '';
  /** The peer's process run (HELLO), '' for peers that do not say. */
  peerInstance = '';
  /** Key of the peer's messages in duplicate suppression: node id and process run. */
  private dedupOrigin = '';
  private readonly mux: Mux;
  private readonly control: RpcConnection;
  private readonly data: RpcConnection;
  private readonly handler: LinkHandler;
  private readonly expectedId: string;
  private closedWith: Error | undefined;
  /** Last time anything arrived from the peer (Date.now). */
  lastSeenUnixMs = 0;
  private readonly batch: BatchEncoder;
  private flushScheduled = false;
  private readonly maxBatchBytes: number;
  private readonly onDrop: ((reason: 'link_send_failed', n: number) => void) | undefined;

  constructor(duplex: Duplex, init: PeerLinkInit) {
    super();
    this.role = init.role;
    this.duplex = duplex;
    this.handler = init.handler;
    this.expectedId = init.expectedId ?? '';
    const maxBytes = init.maxMessageBytes + BODY_OVERHEAD;
    // A batch stays well under the channel's largest message.
    this.maxBatchBytes = Math.min(MAX_BATCH_BYTES, init.maxMessageBytes);
    this.batch = new BatchEncoder(this.maxBatchBytes);
    this.onDrop = init.onDrop;
    this.mux = new Mux(duplex, {
      channels: [
        { id: CHANNEL_CONTROL, urgent: true, sendQueueCapacity: 256, maxMessageBytes: 1024 * 1024 },
        { id: CHANNEL_DATA, priority: 1, sendQueueCapacity: 4096, maxMessageBytes: maxBytes },
      ],
      clock: init.clock,
      drops: init.drops,
      pingIntervalMs: init.pingIntervalMs,
      pongTimeoutMs: init.pongTimeoutMs,
    });
    this.control = new RpcConnection(this.mux, {
      channelId: CHANNEL_CONTROL,
      clock: init.clock,
      drops: init.drops,
      captureStacks: false,
    });
    this.data = new RpcConnection(this.mux, {
      channelId: CHANNEL_DATA,
      clock: init.clock,
      drops: init.drops,
      maxInFlight: init.maxInFlight ?? 4096,
      maxConcurrentHandlers: init.maxInFlight ?? 4096,
      captureStacks: false,
    });
    this.control.setHandler((env, ctx) => this.onControl(env, ctx));
    this.data.setHandler((env, ctx) => this.onData(env, ctx));
    this.mux.on('close', err => this.finish(err));
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  /** Requests and DELIVERED sends waiting for the peer. */
  get inFlight(): number {
    return this.data.inFlight;
  }

  /** Outbound: say who we are and check who answers. Rejects (and closes) on mismatch. */
  async hello(timeoutMs: number): Promise<string> {
    const res = await this.control.request(
      {
        op: Op.HELLO,
        body: encodeHello({
          nodeId: this.handler.localId,
          expectedId: this.expectedId,
          instance: this.handler.instanceId,
        }),
      },
      { timeoutMs }
    );
    const answer = decodeHello(res.body);
    if (this.expectedId && answer.nodeId !== this.expectedId) {
      const err = new FailedPreconditionError(
        `peer at ${this.describeRemote()} is "${answer.nodeId}", not the expected "${this.expectedId}"`
      );
      this.close(err);
      throw err;
    }
    this.setPeer(answer.nodeId, answer.instance);
    return answer.nodeId;
  }

  private setPeer(id: string, instance: string): void {
    this.peerId = id;
    this.peerInstance = instance;
    this.dedupOrigin = `${id}#${instance}`;
  }

  private describeRemote(): string {
    const r = (this.duplex as Duplex & { remoteAddress?: { host: string; port: number } })
      .remoteAddress;
    return r ? `${r.host}:${r.port}` : 'the far end';
  }

  private onControl(env: Envelope, _ctx: HandlerContext): EnvelopeInit | void {
    this.lastSeenUnixMs = Date.now();
    switch (env.op) {
      case Op.HELLO: {
        const hello = decodeHello(env.body);
        if (hello.expectedId && hello.expectedId !== this.handler.localId) {
          const err = new FailedPreconditionError(
            `this node is "${this.handler.localId}", not "${hello.expectedId}" (peer "${hello.nodeId}" has a wrong address for it)`
          );
          // Answer first, then close: the peer learns why.
          setImmediate(() => this.close(err));
          throw err;
        }
        this.setPeer(hello.nodeId, hello.instance);
        this.handler.onHello(this, hello);
        return {
          body: encodeHello({
            nodeId: this.handler.localId,
            expectedId: hello.nodeId,
            instance: this.handler.instanceId,
          }),
        };
      }
      case Op.INTEREST:
        if (!this.peerId) throw new ProtocolError('INTEREST before HELLO');
        this.handler.onInterest(this, decodeInterest(env.body));
        return;
      default:
        throw new ProtocolError(`unknown control op ${env.op}`);
    }
  }

  private onData(env: Envelope, ctx: HandlerContext): Promise<EnvelopeInit> | EnvelopeInit | void {
    this.lastSeenUnixMs = Date.now();
    if (!this.peerId) throw new ProtocolError('data before HELLO');
    switch (env.op) {
      case Op.MESSAGE: {
        const { message, origin, scope, seq } = decodeMessageBody(env.body, env.headers);
        const n = this.handler.onMessage(
          message,
          origin || this.peerId,
          scope,
          seq,
          this.dedupOrigin
        );
        return { body: encodeCount(n) };
      }
      case Op.MESSAGE_BATCH: {
        for (const item of decodeBatch(env.body)) {
          const { message, origin, scope, seq } = decodeMessageBody(item, env.headers);
          this.handler.onMessage(message, origin || this.peerId, scope, seq, this.dedupOrigin);
        }
        return;
      }
      case Op.REQUEST: {
        if (LATENCY_TRACE) traceMark(Stage.DISPATCH_IN);
        const { message, origin } = decodeMessageBody(env.body, env.headers);
        // The caller's remaining deadline travels in the envelope.
        const timeoutMs = env.timeoutMs > 0 ? env.timeoutMs : DEFAULT_REMOTE_TIMEOUT_MS;
        return this.handler
          .onRequest(message, origin || this.peerId, timeoutMs, ctx.signal)
          .then(r => ({
            headers: r.reply.headers,
            body: encodeMessageBody(r.reply, r.responderPeer, ALL_SUBSCRIBERS),
          }));
      }
      case Op.RESPOND: {
        const { token, reply, responderPeer } = decodeRespond(env.body, env.headers);
        const done = this.handler.onRespond(token, reply, responderPeer || this.peerId);
        return done ? done.then(() => ({})) : {};
      }
      case Op.IDEMPOTENCY_CLAIM:
      case Op.IDEMPOTENCY_COMPLETE:
      case Op.IDEMPOTENCY_REPLICATE:
      case Op.IDEMPOTENCY_LOOKUP: {
        const timeoutMs = env.timeoutMs > 0 ? env.timeoutMs : DEFAULT_REMOTE_TIMEOUT_MS;
        return this.handler
          .onPeerCall(env.op, env.body, this.peerId, timeoutMs)
          .then(body => ({ body }));
      }
      default:
        throw new ProtocolError(`unknown data op ${env.op}`);
    }
  }

  /**
   * Sends our interest snapshot or delta (control channel, never behind data). Resolves
   * once the peer has applied it, or failed or timed out (never rejects): a subscriber
   * learns from this when other nodes route to it.
   */
  sendInterest(update: InterestUpdate): Promise<void> {
    if (this.closedWith) return Promise.resolve();
    return this.control
      .request(
        { op: Op.INTEREST, body: encodeInterest(update) },
        { timeoutMs: INTEREST_ACK_TIMEOUT_MS }
      )
      .then(
        () => undefined,
        () => undefined
      );
  }

  /**
   * Forwards a message. With `wantCount`, waits for the peer's DELIVERED count; without,
   * resolves once queued on the link (0).
   */
  sendMessage(
    message: Message,
    scope: DeliveryScope,
    wantCount: boolean,
    timeoutMs?: number,
    seq = -1
  ): Promise<number> {
    this.flushBatch();
    const env: EnvelopeInit = {
      op: Op.MESSAGE,
      headers: message.headers,
      body: encodeMessageBody(message, this.handler.localId, scope, false, seq),
    };
    if (!wantCount) return this.data.oneway(env).then(() => 0);
    return this.data.request(env, { timeoutMs }).then(res => decodeCount(res.body));
  }

  /**
   * Queues a fire-and-forget message. Messages queued in the same run of JavaScript
   * travel together in one MESSAGE_BATCH envelope, sent at the end of the turn (a
   * microtask: flush policy, src/common/flush-policy.ts), so the per-envelope cost (rpc,
   * mux, transport writes) is paid once per batch, not once per message. Order with other
   * data-channel traffic is kept: any other send flushes the batch first.
   */
  enqueueMessage(message: Message, scope: DeliveryScope, seq = -1): void {
    if (this.closedWith) throw this.closedWith;
    const origin = this.handler.localId;
    const plan = this.batch.plan(message, origin, scope, seq);
    if (this.batch.bytes + plan.size > this.maxBatchBytes && this.batch.count > 0) {
      this.flushBatch();
    }
    this.batch.add(message, origin, scope, plan);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(this.flushBatch);
    }
  }

  /** Sends the queued batch now. */
  private readonly flushBatch = (): void => {
    this.flushScheduled = false;
    const n = this.batch.count;
    if (n === 0) return;
    this.data
      .oneway({ op: Op.MESSAGE_BATCH, body: this.batch.take() })
      .catch(() => this.onDrop?.('link_send_failed', n));
  };

  /** Sends a request to the peer's responders; resolves with the reply. */
  async request(
    message: Message,
    timeoutMs: number,
    signal?: AbortSignal
  ): Promise<{ reply: Message; responderPeer: string }> {
    this.flushBatch();
    const res = await this.data.request(
      {
        op: Op.REQUEST,
        headers: message.headers,
        body: encodeMessageBody(message, this.handler.localId, ALL_SUBSCRIBERS),
      },
      { timeoutMs, signal }
    );
    const { message: reply, origin } = decodeMessageBody(res.body, res.headers);
    return { reply, responderPeer: origin };
  }

  /**
   * Hands a client's reply to this peer, which issued its reply token. Rejects with the
   * peer's answer (NOT_FOUND when the request is gone there, saying why).
   */
  async respond(
    token: string,
    reply: Message,
    responderPeer: string,
    timeoutMs: number
  ): Promise<void> {
    this.flushBatch();
    await this.data.request(
      { op: Op.RESPOND, headers: reply.headers, body: encodeRespond(token, reply, responderPeer) },
      { timeoutMs }
    );
  }

  /** A node-layer call (PeerCallOp) to the peer; resolves with its answer body. */
  async call(op: PeerCallOp, body: Buffer, timeoutMs: number): Promise<Buffer> {
    this.flushBatch();
    const res = await this.data.request({ op, body }, { timeoutMs });
    return res.body;
  }

  /** Transport figures when the duplex is a RudpConnection. */
  transportStats(): { srttMs: number } | undefined {
    const d = this.duplex as Duplex & { stats?: () => { srttMs: number } };
    return typeof d.stats === 'function' ? d.stats() : undefined;
  }

  /** Closes the link; pending calls fail at once. Graceful on the transport. Idempotent. */
  close(err?: Error): void {
    if (this.closedWith) return;
    this.mux.close(err ?? 'closed by application');
  }

  private finish(err: Error): void {
    if (this.closedWith) return;
    this.closedWith = err instanceof Error ? err : new UnavailableError(String(err));
    if (this.batch.count > 0) this.onDrop?.('link_send_failed', this.batch.count);
    if (this.batch.count > 0) this.batch.take();
    this.control.close(this.closedWith);
    this.data.close(this.closedWith);
    const d = this.duplex as Duplex & { close?: () => void };
    if (typeof d.close === 'function') d.close();
    else d.end();
    this.emit('close', this.closedWith);
  }
}
