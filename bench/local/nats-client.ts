/**
 * NATS anchor client (npm `nats` against Debian's nats-server), in its own process. One
 * process plays one role per scenario: requester, responder, publisher or subscriber.
 */
import { connect } from 'nats';
import type { NatsConnection, Subscription } from 'nats';
import { serveWorker } from '../common/proc';
import { measureLatency, measureThroughput } from '../common/load';
import type { LoopLimits } from '../common/load';
import { PublisherControl, SubscriberCounter } from './pubsub-parts';
import type { PublishParams, SubscribeParams } from './pubsub-parts';

let nc: NatsConnection | undefined;
let sub: Subscription | undefined;
let counter: SubscriberCounter | undefined;
let pub: PublisherControl | undefined;

function conn(): NatsConnection {
  if (!nc) throw new Error('not connected');
  return nc;
}

interface RequestParams extends LoopLimits {
  subject: string;
  size: number;
  concurrency?: number;
}

async function request(subject: string, payload: Uint8Array): Promise<void> {
  const m = await conn().request(subject, payload, { timeout: 5_000 });
  if (m.data.length !== payload.length) throw new Error('bad reply');
}

async function publish(p: PublishParams): Promise<{ sent: number }> {
  const c = conn();
  const ctl = new PublisherControl(p.window);
  pub = ctl;
  const payload = new Uint8Array(p.size).fill(7);
  const flushes: Promise<void>[] = [];
  const end = Date.now() + p.maxMs;
  while (!ctl.stopped && ctl.sent < p.maxMessages && Date.now() < end) {
    await ctl.room(p.batch);
    if (ctl.stopped) break;
    for (let i = 0; i < p.batch; i++) c.publish(p.subject, payload);
    ctl.sent += p.batch;
    flushes.push(c.flush());
    if (flushes.length >= p.inFlight) await flushes.shift();
  }
  await Promise.all(flushes);
  pub = undefined;
  return { sent: ctl.sent };
}

serveWorker(
  {
    connect: async (p: { port: number }) => {
      nc = await connect({ servers: `127.0.0.1:${p.port}`, name: 'bench' });
      return {};
    },
    // Responder: echo every request.
    respond: async (p: { subject: string }) => {
      sub = conn().subscribe(p.subject, {
        callback: (err, m) => {
          if (!err) m.respond(m.data);
        },
      });
      await conn().flush();
      return {};
    },
    requestLatency: (p: RequestParams) => {
      const payload = new Uint8Array(p.size).fill(7);
      return measureLatency(() => request(p.subject, payload), p);
    },
    requestThroughput: (p: RequestParams) => {
      const payload = new Uint8Array(p.size).fill(7);
      return measureThroughput(() => request(p.subject, payload), p.concurrency ?? 64, p);
    },
    subscribe: async (p: SubscribeParams) => {
      const cnt = new SubscriberCounter(p.size);
      counter = cnt;
      sub = conn().subscribe(p.subject, {
        callback: (err, m) => {
          if (!err) cnt.onMessage(m.data.length);
        },
      });
      await conn().flush();
      cnt.start();
      return {};
    },
    measure: (p: { warmupMs: number; durationMs: number }) => {
      if (!counter) throw new Error('not subscribed');
      return counter.measure(p.warmupMs, p.durationMs);
    },
    settle: async (p: { expected: number }) => {
      await counter?.settle(p.expected);
      return { received: counter?.received ?? 0, bad: counter?.bad ?? 0 };
    },
    unsubscribe: async () => {
      counter?.stop();
      counter = undefined;
      sub?.unsubscribe();
      sub = undefined;
      await nc?.flush();
      return {};
    },
    publish,
  },
  {
    credit: (total: number) => pub?.credit.update(total),
    stop: () => {
      if (pub) pub.stopped = true;
    },
  },
  async () => {
    await nc?.close();
  }
);
