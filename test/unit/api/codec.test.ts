import test from 'ava';
import fc from 'fast-check';
import { Root } from 'protobufjs';
import { join } from 'node:path';
import { protoDir } from '../../../src/api';
import { encodeDeliveryBatch } from '../../../src/api/codec';

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
