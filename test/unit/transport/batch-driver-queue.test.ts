/**
 * The batch driver's send queue and receive hand-off, driven through a stand-in for the
 * native addon: what happens when the kernel takes only part of a batch (EAGAIN), while
 * the driver waits for writability, and when the bounded queue is full. The real addon's
 * behaviour on sockets is in test/integration/transport/batch-driver.test.ts.
 */
import test from 'ava';
import { BatchUdpDriver } from '../../../src/transport';
import type { UdpBatchAddon } from '../../../src/transport';

const META = 32;

/** A stand-in addon: sends take what `accept` allows; everything is recorded. */
function standIn(accept: (start: number, end: number) => number) {
  const st = {
    calls: [] as [number, number][],
    sent: [] as Buffer[],
    awaits: 0,
    recvData: Buffer.alloc(0) as Buffer,
    recvMeta: Buffer.alloc(0) as Buffer,
    onReceive: (_n: number): void => undefined,
    onWritable: (): void => undefined,
  };
  let sendData: Buffer = Buffer.alloc(0);
  let sendMeta: Buffer = Buffer.alloc(0);
  let slot = 0;
  const addon: UdpBatchAddon = {
    META_BYTES: META,
    open(_v6, _a, _p, _b, rd, rm, slotBytes, sd, sm, _s, _c, onReceive, onWritable) {
      st.recvData = rd;
      st.recvMeta = rm;
      sendData = sd;
      sendMeta = sm;
      slot = slotBytes;
      st.onReceive = onReceive;
      st.onWritable = onWritable;
      return {};
    },
    localAddress: () => ['127.0.0.1', 9],
    startReceive: () => undefined,
    send(_h, start, end) {
      st.calls.push([start, end]);
      const next = accept(start, end);
      for (let i = start; i < next; i++) {
        const len = sendMeta.readUInt32LE(i * META + 28);
        st.sent.push(Buffer.from(sendData.subarray(i * slot, i * slot + len)));
      }
      return next;
    },
    awaitWritable: () => {
      st.awaits++;
    },
    close: (_h, onClosed) => setImmediate(() => onClosed?.()),
    pton: (address, port) => {
      const b = Buffer.alloc(META);
      b.writeUInt16LE(2, 0);
      b.writeUInt16BE(port, 2);
      address.split('.').forEach((x, i) => b.writeUInt8(Number(x), 4 + i));
      return b;
    },
    ntop: (meta, off) => [4, 5, 6, 7].map(i => meta[off + i]).join('.'),
  };
  return { addon, st };
}

const turn = (): Promise<void> => new Promise(r => setImmediate(r));

test('a turn of sends leaves in one call; a partial send waits for writability, then resumes where it stopped', async t => {
  let budget = 2; // the kernel takes two datagrams, then EAGAIN
  const { addon, st } = standIn((start, end) => Math.min(end, start + budget));
  const d = await BatchUdpDriver.over(addon, '127.0.0.1', 0, 1472);
  for (let i = 0; i < 5; i++) d.send([Buffer.from([i]), Buffer.from('x')], 7000, '10.0.0.1');
  t.deepEqual(st.calls, [], 'nothing leaves before the turn ends');
  await turn();
  t.deepEqual(st.calls, [[0, 5]]);
  t.is(st.awaits, 1, 'blocked: waits for writability');
  // sends while blocked queue behind the unsent three, no call until writable
  for (let i = 5; i < 8; i++) d.send([Buffer.from([i])], 7000, '10.0.0.1');
  await turn();
  t.is(st.calls.length, 1);
  budget = 100;
  st.onWritable();
  t.deepEqual(st.calls, [
    [0, 5],
    [2, 8],
  ]);
  t.deepEqual(
    st.sent.map(b => b[0]),
    [0, 1, 2, 3, 4, 5, 6, 7],
    'every datagram once, in order'
  );
  t.is(st.sent[0].toString('latin1', 1), 'x', 'parts are joined');
  // the queue starts over at slot 0
  d.send([Buffer.from([8])], 7000, '10.0.0.1');
  await turn();
  t.deepEqual(st.calls[2], [0, 1]);
  t.is(d.stats().sendQueueFull, 0);
  await d.close();
});

test('a full queue while blocked drops the newest datagrams and counts them; nothing is lost after', async t => {
  let open = false;
  const { addon, st } = standIn((start, end) => (open ? end : start));
  const d = await BatchUdpDriver.over(addon, '127.0.0.1', 0, 1472);
  for (let i = 0; i < 300; i++) d.send([Buffer.alloc(100, i & 0xff)], 7000, '10.0.0.1');
  await turn();
  t.is(d.stats().sendQueueFull, 300 - 256, '256 slots for 1472-byte datagrams');
  open = true;
  st.onWritable();
  t.is(st.sent.length, 256);
  t.is(st.sent[255][0], 255);
  d.send([Buffer.from('after')], 7000, '10.0.0.1');
  await turn();
  t.is(st.sent[256].toString(), 'after');
  await d.close();
});

test('close sends what is queued first, and later sends are ignored', async t => {
  const { addon, st } = standIn((_s, end) => end);
  const d = await BatchUdpDriver.over(addon, '127.0.0.1', 0, 1472);
  d.send([Buffer.from('last words')], 7000, '10.0.0.1');
  const closed = d.close();
  t.is(st.sent.length, 1, 'flushed synchronously by close');
  d.send([Buffer.from('too late')], 7000, '10.0.0.1');
  await closed;
  await turn();
  t.is(st.sent.length, 1);
});

test('a received batch: each datagram copied out of its slot, the sender object reused while it repeats', async t => {
  const { addon, st } = standIn((_s, end) => end);
  const d = await BatchUdpDriver.over(addon, '127.0.0.1', 0, 1472);
  const got: { msg: Buffer; from: { address: string; port: number } }[] = [];
  d.onMessage((msg, from) => got.push({ msg, from }));
  const slot = 1473;
  const put = (i: number, text: string, ip: number[], port: number): void => {
    st.recvData.write(text, i * slot);
    st.recvMeta.fill(0, i * META, (i + 1) * META);
    st.recvMeta.writeUInt16LE(2, i * META);
    st.recvMeta.writeUInt16BE(port, i * META + 2);
    ip.forEach((x, k) => st.recvMeta.writeUInt8(x, i * META + 4 + k));
    st.recvMeta.writeUInt32LE(text.length, i * META + 28);
  };
  put(0, 'one', [10, 0, 0, 2], 7001);
  put(1, 'two', [10, 0, 0, 2], 7001);
  put(2, 'three', [10, 0, 0, 3], 7001);
  put(3, 'four', [10, 0, 0, 3], 7002);
  st.onReceive(4);
  st.recvData.fill(0); // the next batch reuses the slots
  t.deepEqual(
    got.map(g => g.msg.toString()),
    ['one', 'two', 'three', 'four']
  );
  t.deepEqual(got[0].from, { address: '10.0.0.2', port: 7001 });
  t.is(got[1].from, got[0].from, 'same sender: same object');
  t.deepEqual(got[2].from, { address: '10.0.0.3', port: 7001 });
  t.deepEqual(got[3].from, { address: '10.0.0.3', port: 7002 });
  await d.close();
});
