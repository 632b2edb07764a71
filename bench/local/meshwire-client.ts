/**
 * meshwire client for the local benchmark, in its own process: plain @grpc/grpc-js over
 * proto/messaging/v1/messaging.proto, as any application would call the node. One process
 * plays one role per scenario: requester, responder, publisher or subscriber.
 */
import * as grpc from '@grpc/grpc-js';
import { join } from 'node:path';
import { BENCH_CHANNEL_OPTIONS, loadService, waitReady } from '../common/grpc';
import { repoRoot } from '../common/results';
import { serveWorker, sleep } from '../common/proc';
import { measureLatencyCpu } from '../common/cpu';
import type { LoopLimits, ThroughputResult } from '../common/load';
import { PublisherControl, SubscriberCounter } from './pubsub-parts';
import type { PublishParams, SubscribeParams, Target } from './pubsub-parts';
import { systemClock } from '../../src/common';
import {
  PublisherStats,
  RequesterStats,
  StopSignal,
  runPublisher,
  runRequester,
} from '../../src/cli/load';
import type { MessengerApi } from '../../src/cli/load';
import type { DeliveryBatch__Output } from '../../src/api/generated/messaging/v1/DeliveryBatch';
import type { MessengerClient } from '../../src/api/generated/messaging/v1/Messenger';
import type { RequestResponse__Output as RequestResponse } from '../../src/api/generated/messaging/v1/RequestResponse';
import type { RespondRequest } from '../../src/api/generated/messaging/v1/RespondRequest';

// The proto's types (src/api/generated, `make types`), as an application would generate them.
type DeliveryBatch = DeliveryBatch__Output;
type Cb<T> = (err: grpc.ServiceError | null, res?: T) => void;

const messenger = loadService(
  join(repoRoot(), 'proto', 'messaging', 'v1', 'messaging.proto'),
  'messaging.v1.Messenger'
);
let client: MessengerClient | undefined;
const cleanups: (() => void)[] = [];
let counter: SubscriberCounter | undefined;
let subStream: grpc.ClientReadableStream<DeliveryBatch> | undefined;
let pub: { ctl: PublisherControl; stop: StopSignal } | undefined;

function c(): MessengerClient {
  if (!client) throw new Error('not connected');
  return client;
}

function unary<T>(fn: (cb: Cb<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res!))));
}

/** Sends probes (1-byte payload) until `ready()` holds: a subscription is live on the node. */
async function probeUntil(
  probe: () => Promise<unknown>,
  ready: () => boolean,
  what: string
): Promise<void> {
  const end = Date.now() + 10_000;
  while (!ready()) {
    if (Date.now() > end) throw new Error(`${what}: not live after 10 s`);
    await probe().catch(() => undefined);
    if (!ready()) await sleep(20);
  }
}

interface RequestParams extends LoopLimits {
  subject: string;
  size: number;
  concurrency?: number;
  /** The node to ask (cluster benchmark); unset: a node with a responder. */
  target?: Target;
  /** Processes whose CPU per request to report (the node). */
  cpuPids?: number[];
}

function request(subject: string, payload: Buffer, target?: Target): Promise<void> {
  return unary<RequestResponse>(cb =>
    c().Request(
      { message: { topic: subject, payload }, timeoutMs: 5_000, target },
      { deadline: Date.now() + 10_000 },
      cb
    )
  ).then(r => {
    if (r.reply?.payload.length !== payload.length) throw new Error('bad reply');
  });
}

/** Answers every request on `subject` with its own payload, by Respond or RespondStream. */
async function respond(p: { subject: string; mode: 'unary' | 'stream'; maxBatch: number }) {
  const sub = c().Subscribe({ topics: [p.subject], maxBatch: p.maxBatch });
  let answered = 0;
  let failed = 0;
  let rs: grpc.ClientWritableStream<RespondRequest> | undefined;
  if (p.mode === 'stream') {
    rs = c().RespondStream(() => undefined);
    rs.on('error', () => undefined);
  }
  sub.on('data', (b: DeliveryBatch) => {
    for (const d of b.deliveries) {
      const reply: RespondRequest = {
        replyTo: d.replyTo,
        message: { topic: '', payload: d.message?.payload ?? Buffer.alloc(0) },
      };
      if (rs) {
        rs.write(reply);
        answered++;
      } else {
        c().Respond(reply, err => {
          if (err) failed++;
          else answered++;
        });
      }
    }
  });
  sub.on('error', () => undefined);
  cleanups.push(() => {
    sub.cancel();
    rs?.end();
  });
  let ok = false;
  await probeUntil(
    () =>
      request(p.subject, Buffer.alloc(1)).then(() => {
        ok = true;
      }),
    () => ok,
    `responder on ${p.subject}`
  );
  return { answered, failed };
}

/**
 * RequestStream with `concurrency` requests in flight, replies matched by request_id: the
 * requester of `meshwire bench request` (src/cli/load), so the two cannot disagree. The rate
 * counts replies between the end of the warm-up and the end of the window.
 */
async function requestThroughput(p: RequestParams): Promise<ThroughputResult> {
  const stats = new RequesterStats();
  const stop = new StopSignal();
  const now = (): bigint => process.hrtime.bigint();
  let window: { count: number; at: bigint } | undefined;
  let ended: { count: number; at: bigint } | undefined;
  const warm = setTimeout(() => (window = { count: stats.answered, at: now() }), p.warmupMs);
  const end = setTimeout(() => {
    ended = { count: stats.answered, at: now() };
    stop.stop();
  }, p.warmupMs + p.durationMs);
  try {
    await runRequester(
      c() as unknown as MessengerApi,
      {
        subject: p.subject,
        size: p.size,
        concurrency: p.concurrency ?? 64,
        timeoutMs: 5_000,
        maxMessages: p.maxOps,
        maxMs: p.warmupMs + p.durationMs + 1_000,
        target: p.target,
        expectEcho: true,
      },
      stats,
      stop,
      systemClock
    );
  } finally {
    clearTimeout(warm);
    clearTimeout(end);
  }
  ended ??= { count: stats.answered, at: now() }; // the count limit came first
  const from = window ?? ended;
  const elapsedMs = Number(ended.at - from.at) / 1e6;
  const count = ended.count - from.count;
  return {
    rate: elapsedMs > 0 ? (count * 1000) / elapsedMs : 0,
    count,
    elapsedMs,
    errors: stats.failed,
    firstError: stats.firstError || undefined,
  };
}

async function subscribe(p: SubscribeParams) {
  const cnt = new SubscriberCounter(p.size);
  let probed = false;
  const s = c().Subscribe({
    topics: [p.subject],
    maxBatch: p.maxBatch,
    bufferSize: p.bufferSize,
  });
  s.on('data', (b: DeliveryBatch) => {
    cnt.dropped += b.dropped;
    for (const d of b.deliveries) {
      const len = d.message?.payload.length ?? 0;
      if (len === 1) probed = true;
      else cnt.onMessage(len);
    }
  });
  s.on('error', () => undefined);
  subStream = s;
  await probeUntil(
    () => unary(cb => c().Send({ message: { topic: p.subject, payload: Buffer.alloc(1) } }, cb)),
    () => probed,
    `subscription to ${p.subject}`
  );
  counter = cnt;
  cnt.start();
  return {};
}

/**
 * SendStream: `batch` messages per request, at most `inFlight` unacked requests, within
 * the subscriber's credit: the publisher of `meshwire bench pub` (src/cli/load), so the
 * two cannot disagree.
 */
async function publish(p: PublishParams): Promise<{ sent: number }> {
  const ctl = new PublisherControl(p.window);
  const stop = new StopSignal();
  pub = { ctl, stop };
  try {
    await runPublisher(
      // The generated client has these methods; MessengerApi names the slice the load uses.
      c() as unknown as MessengerApi,
      p,
      new PublisherStats(),
      ctl,
      stop,
      systemClock,
      { stamp: false, target: p.target }
    );
    return { sent: ctl.sent };
  } finally {
    pub = undefined;
  }
}

serveWorker(
  {
    connect: async (p: { port: number }) => {
      client = new messenger.ctor(
        `127.0.0.1:${p.port}`,
        grpc.credentials.createInsecure(),
        BENCH_CHANNEL_OPTIONS
      ) as unknown as MessengerClient;
      await waitReady(client);
      return {};
    },
    respond,
    requestLatency: (p: RequestParams) => {
      const payload = Buffer.alloc(p.size, 7);
      return measureLatencyCpu(() => request(p.subject, payload, p.target), p, p.cpuPids);
    },
    // Until one request is answered (a responder on another node is reachable).
    waitRequest: async (p: { subject: string; target?: Target }) => {
      let ok = false;
      await probeUntil(
        () =>
          request(p.subject, Buffer.alloc(1), p.target).then(() => {
            ok = true;
          }),
        () => ok,
        `a responder on ${p.subject}`
      );
      return {};
    },
    requestThroughput,
    subscribe,
    measure: (p: { warmupMs: number; durationMs: number }) => {
      if (!counter) throw new Error('not subscribed');
      return counter.measure(p.warmupMs, p.durationMs);
    },
    settle: async (p: { expected: number }) => {
      await counter?.settle(p.expected);
      return { received: counter?.received ?? 0, dropped: counter?.dropped ?? 0 };
    },
    unsubscribe: () => {
      counter?.stop();
      counter = undefined;
      subStream?.cancel();
      subStream = undefined;
      return {};
    },
    publish,
  },
  {
    credit: (total: number) => pub?.ctl.credit.update(total),
    stop: () => {
      if (!pub) return;
      pub.ctl.stopped = true;
      pub.stop.stop();
    },
  },
  () => {
    for (const f of cleanups) f();
    subStream?.cancel();
    client?.close();
  }
);
