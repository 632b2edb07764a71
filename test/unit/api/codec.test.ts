import test from 'ava';
import fc from 'fast-check';
import { Root } from 'protobufjs';
import { join } from 'node:path';
import { protoDir } from '../../../src/api';
import {
  encodeDeliveryBatch,
  encodeSendStreamResponse,
  fastMessengerDefinition,
} from '../../../src/api/codec';
import { serviceConstructors } from '../../../src/api/proto';

const root = new Root();
root.loadSync(join(protoDir(), 'messaging/v1/messaging.proto'), { keepCase: false });
const DeliveryBatch = root.lookupType('messaging.v1.DeliveryBatch');

const text = fc.string({ unit: 'binary', maxLength: 40 });
const message = fc.record({
  id: text,
  topic: text,
  payload: fc.uint8Array({ maxLength: 300 }).map(a => Buffer.from(a)),
  headers: fc.dictionary(fc.string({ minLength: 1, maxLength: 20, unit: 'binary' }), text, {
    maxKeys: 5,
  }),
});
const batch = fc.record({
  deliveries: fc.array(fc.record({ message, sourcePeer: text, replyTo: text }), { maxLength: 8 }),
  dropped: fc.oneof(fc.constant(0), fc.nat(), fc.maxSafeNat()),
});

test('property: the hand-written DeliveryBatch encoder agrees with protobufjs', t => {
  fc.assert(
    fc.property(batch, b => {
      const mine = encodeDeliveryBatch(b);
      const decoded = DeliveryBatch.toObject(DeliveryBatch.decode(mine), {
        longs: Number,
        defaults: true,
        bytes: Buffer,
      }) as {
        deliveries: Array<{
          message: { id: string; topic: string; payload: Buffer; headers: Record<string, string> };
          sourcePeer: string;
          replyTo: string;
        }>;
        dropped: number;
      };
      if (decoded.dropped !== b.dropped || decoded.deliveries.length !== b.deliveries.length)
        return false;
      return b.deliveries.every((d, i) => {
        const got = decoded.deliveries[i];
        return (
          got.sourcePeer === d.sourcePeer &&
          got.replyTo === d.replyTo &&
          got.message.id === d.message.id &&
          got.message.topic === d.message.topic &&
          Buffer.compare(Buffer.from(got.message.payload), d.message.payload) === 0 &&
          JSON.stringify(Object.entries(got.message.headers ?? {}).sort()) ===
            JSON.stringify(Object.entries(d.message.headers).sort())
        );
      });
    }),
    { numRuns: 500 }
  );
  t.pass();
});

test('an empty batch encodes to zero bytes', t => {
  t.is(encodeDeliveryBatch({ deliveries: [], dropped: 0 }).length, 0);
});

const SendStreamResponse = root.lookupType('messaging.v1.SendStreamResponse');

test('property: the hand-written SendStreamResponse encoder agrees with protobufjs', t => {
  const general = (r: unknown): Buffer =>
    Buffer.from(SendStreamResponse.encode(r as Record<string, unknown>).finish());
  const response = fc.record({
    sequence: fc.oneof(fc.constant(0), fc.nat(), fc.maxSafeNat()),
    ids: fc.array(fc.oneof(text, fc.string({ maxLength: 100 })), { maxLength: 8 }),
    delivered: fc.oneof(fc.constant(0), fc.nat(), fc.constant(0xffffffff)),
    errorCode: fc.oneof(fc.constant(0), fc.integer({ min: -5, max: 16 })),
    errorMessage: fc.oneof(fc.constant(''), text),
  });
  fc.assert(
    fc.property(response, r => {
      const got = SendStreamResponse.toObject(
        SendStreamResponse.decode(encodeSendStreamResponse(r, general)),
        { longs: Number, defaults: true }
      );
      t.deepEqual(got, r);
    }),
    { numRuns: 500 }
  );
});

test('decoded strings are the same whether or not an equal string was decoded before', t => {
  const def = fastMessengerDefinition(serviceConstructors().Messenger.service);
  const decode = def.SendStream!.requestDeserialize;
  const Req = root.lookupType('messaging.v1.SendStreamRequest');
  const topics = ['orders.created', 'orders.created', 'ascii.é.topic', 'x', 'orders.createe'];
  const bytes = Req.encode({
    sequence: 1,
    messages: topics.map(topic => ({ topic, payload: Buffer.from('p'), headers: { k: topic } })),
  }).finish();
  for (let round = 0; round < 2; round++) {
    const m = decode(Buffer.from(bytes)) as {
      messages: Array<{ topic: string; headers: Record<string, string> }>;
    };
    t.deepEqual(
      m.messages.map(x => x.topic),
      topics
    );
    t.deepEqual(
      m.messages.map(x => x.headers.k),
      topics
    );
  }
  // A string whose bytes are not ASCII is never taken for a cached one of equal length.
  const invalid = Req.encode({ sequence: 1, messages: [{ topic: 'ab' }] }).finish();
  const at = Buffer.from(invalid).indexOf('ab');
  const bad = Buffer.from(invalid);
  bad[at] = 0xe1;
  const d = decode(bad) as { messages: Array<{ topic: string }> };
  t.is(d.messages[0].topic, Buffer.from([0xe1, 0x62]).toString('utf8'));
});

test('deliveries sharing a topic and a source peer (measured once) encode like protobufjs', t => {
  const topics = ['t.é', 't.é', 'orders', 'orders', 't.é'];
  const b = {
    deliveries: topics.map((topic, i) => ({
      message: { id: `id${i}`, topic, payload: Buffer.from([i]), headers: {} },
      sourcePeer: i < 3 ? 'nöde' : 'node-b',
      replyTo: '',
    })),
    dropped: 0,
  };
  const decoded = DeliveryBatch.toObject(DeliveryBatch.decode(encodeDeliveryBatch(b)), {
    defaults: true,
  }) as { deliveries: Array<{ message: { topic: string }; sourcePeer: string }> };
  t.deepEqual(
    decoded.deliveries.map(d => [d.message.topic, d.sourcePeer]),
    b.deliveries.map(d => [d.message.topic, d.sourcePeer])
  );
});
