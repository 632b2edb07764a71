import test from 'ava';
import fc from 'fast-check';
import { simulate } from './sim';

const faults = fc.record({
  seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
  clientBytes: fc.integer({ min: 0, max: 300_000 }),
  serverBytes: fc.integer({ min: 0, max: 60_000 }),
  lossRate: fc.double({ min: 0, max: 0.3, noNaN: true }),
  duplicateRate: fc.double({ min: 0, max: 0.2, noNaN: true }),
  reorderRate: fc.double({ min: 0, max: 0.3, noNaN: true }),
  corruptRate: fc.double({ min: 0, max: 0.05, noNaN: true }),
  jitter: fc.double({ min: 0, max: 3, noNaN: true }),
  bursty: fc.boolean(),
  congestion: fc.constantFrom('bbr' as const, 'cubic' as const, 'newreno' as const),
});

test('exactly-once in-order delivery and clean close under random faults', t => {
  fc.assert(
    fc.property(faults, f => {
      const r = simulate({
        seed: f.seed,
        clientBytes: f.clientBytes,
        serverBytes: f.serverBytes,
        congestion: f.congestion,
        link: {
          lossRate: f.lossRate,
          duplicateRate: f.duplicateRate,
          reorderRate: f.reorderRate,
          corruptRate: f.corruptRate,
          delayMs: [0.2, 0.2 + f.jitter],
          burst: f.bursty ? { enter: 0.01, exit: 0.3, lossRate: 0.8 } : undefined,
        },
      });
      const ctx = `seed=${f.seed} ${JSON.stringify(f)}`;
      if (!r.receivedByServer.equals(r.sentToServer))
        throw new Error(`client->server bytes differ: ${ctx}`);
      if (!r.receivedByClient.equals(r.sentToClient))
        throw new Error(`server->client bytes differ: ${ctx}`);
      if (!r.clientClosed || r.clientClosed.err)
        throw new Error(`client did not close cleanly (${r.clientClosed?.err?.message}): ${ctx}`);
      if (!r.serverClosed || r.serverClosed.err)
        throw new Error(`server did not close cleanly (${r.serverClosed?.err?.message}): ${ctx}`);
      return true;
    }),
    { numRuns: 60 }
  );
  t.pass();
});

test('graceful close() with data still in flight delivers everything first', t => {
  const r = simulate({
    seed: 7,
    clientBytes: 400_000,
    clientCloses: true,
    link: { lossRate: 0.1, delayMs: [1, 3] },
  });
  t.true(r.receivedByServer.equals(r.sentToServer));
  t.is(r.clientClosed?.err, null);
  t.is(r.serverClosed?.err, null);
});
