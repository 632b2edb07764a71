/**
 * The RequestMany handler (src/api/messenger-service.ts) on a fake server stream whose
 * write() says the client is behind and never drains: replies wait in a bounded queue,
 * and one more than MAX_BUFFERED_GATHER_REPLIES ends the call with RESOURCE_EXHAUSTED
 * (counted as slow_client). And a client that reads: every reply written, then end().
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { Metadata, status } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import test from 'ava';
import {
  MAX_BUFFERED_GATHER_BYTES,
  MAX_BUFFERED_GATHER_REPLIES,
  messengerService,
} from '../../../src/api/messenger-service';
import { MeshNode } from '../../../src/node';
import { silentLogger } from '../../../src/telemetry';

class FakeCall extends EventEmitter {
  readonly metadata = new Metadata();
  cancelled = false;
  ended = false;
  error: ServiceError | undefined;
  readonly written: unknown[] = [];
  constructor(
    readonly request: unknown,
    /** What write() returns: false = the client is behind. */
    private readonly keepsUp: boolean
  ) {
    super();
    this.on('error', (err: ServiceError) => (this.error = err));
  }
  write(m: unknown): boolean {
    this.written.push(m);
    return this.keepsUp;
  }
  end(): void {
    this.ended = true;
  }
  getDeadline(): number {
    return Infinity;
  }
}

function setUp(subscribers: number) {
  const node = new MeshNode({
    config: {
      nodeId: 'unit',
      peerListen: { host: '127.0.0.1', port: 1 },
      drainTimeoutMs: 100,
      maxMessageBytes: 1 << 20,
      requestTimeoutMs: 30_000,
      subscriberBufferSize: 4,
    },
    replySecret: randomBytes(32),
  });
  const subs = Array.from({ length: subscribers }, () =>
    node.subscribe({ patterns: ['svc.many'], bufferSize: 4 })
  );
  const handlers = messengerService(node, silentLogger(), { subscriptions: new Set() });
  const run = (call: FakeCall): void =>
    (handlers.RequestMany as unknown as (c: FakeCall) => void)(call);
  const answerAll = (count = subs.length, payload = Buffer.from('r')): void => {
    for (const s of subs.splice(0, count)) {
      const d = s.take()?.deliveries[0];
      try {
        void node.respond(d?.replyTo ?? '', {
          id: '',
          topic: '',
          payload,
          headers: {},
        });
      } catch {
        // the gather ended: NOT_FOUND for the rest
      }
    }
  };
  return { node, run, answerAll };
}

test('a client that stays behind: RESOURCE_EXHAUSTED past the bound, counted as slow_client', async t => {
  const n = MAX_BUFFERED_GATHER_REPLIES + 50;
  const { node, run, answerAll } = setUp(n);
  const call = new FakeCall({ message: { topic: 'svc.many' }, timeoutMs: 10_000 }, false);
  run(call);
  answerAll();
  // One write went to the stream (it said "behind"), MAX waited, the next one ended it.
  t.is(call.written.length, 1);
  t.is(call.error?.code, status.RESOURCE_EXHAUSTED);
  t.regex(
    call.error?.details ?? '',
    /1024 replies \(1024 bytes; at most 1024 replies or 16777216 bytes\) wait for this client/
  );
  t.false(call.ended);
  t.is(node.gathers.ended.get('slow_client'), 1);
  t.is(node.gathers.replies, MAX_BUFFERED_GATHER_REPLIES + 2);
  t.is(node.replies.gatherCount, 0, 'the entry is closed');
  await node.drain(10);
});

test('a client that stays behind with large replies: RESOURCE_EXHAUSTED past the byte bound', async t => {
  const { node, run, answerAll } = setUp(40);
  const call = new FakeCall({ message: { topic: 'svc.many' }, timeoutMs: 10_000 }, false);
  run(call);
  const size = (1 << 20) - 1024;
  answerAll(40, Buffer.alloc(size, 1));
  const held = Math.floor(MAX_BUFFERED_GATHER_BYTES / size); // 16 fit, the next does not
  t.is(call.written.length, 1);
  t.is(call.error?.code, status.RESOURCE_EXHAUSTED);
  t.regex(
    call.error?.details ?? '',
    new RegExp(`^request_many: ${held} replies \\(${held * size} bytes;`)
  );
  t.is(node.gathers.ended.get('slow_client'), 1);
  t.is(node.gathers.replies, held + 2, 'the written one, the held ones, the one that ended it');
  t.is(node.replies.gatherCount, 0, 'the entry is closed');
  await node.drain(10);
});

test('a client that catches up: held replies flush on drain, then the stream ends OK', async t => {
  const { node, run, answerAll } = setUp(100);
  const call = new FakeCall({ message: { topic: 'svc.many' }, timeoutMs: 10_000 }, false);
  run(call);
  answerAll(99);
  t.is(call.written.length, 1, 'the rest wait for drain');
  t.false(call.ended);
  call.emit('drain');
  t.is(call.written.length, 2, 'one more write, which says "behind" again');
  answerAll();
  // all_answered ended it: what waited is written before end().
  t.true(call.ended);
  t.is(call.written.length, 100);
  t.is(call.error, undefined);
  t.is(node.gathers.ended.get('all_answered'), 1);
  await node.drain(10);
});

test('a client that keeps up: each reply written as it comes', async t => {
  const { node, run, answerAll } = setUp(10);
  const call = new FakeCall({ message: { topic: 'svc.many' }, maxReplies: 5 }, true);
  run(call);
  answerAll();
  t.is(call.written.length, 5);
  t.true(call.ended);
  t.is(node.gathers.ended.get('max_replies'), 1);
  await node.drain(10);
});
