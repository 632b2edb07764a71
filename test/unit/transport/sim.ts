/**
 * Test helper: two engines over the virtual network in simulated time (no timers), with
 * a writer on each side. Deterministic for a given seed.
 */
import { randomBytes } from 'node:crypto';
import { RudpEngine } from '../../../src/transport/engine/engine';
import type { EngineInit } from '../../../src/transport/engine/types';
import {
  ClusterKeys,
  parseInitial,
  selectAeadBackend,
} from '../../../src/transport/crypto/packet-protection';
import { VirtualNetwork, seededRandom } from '../../../src/transport/virtual/virtual-network';
import type { LinkConditions } from '../../../src/transport/virtual/virtual-network';
import type { CongestionAlgorithm } from '../../../src/transport/congestion';

export interface SimOptions {
  seed: number;
  /** Bytes the client sends to the server. */
  clientBytes: number;
  /** Bytes the server sends to the client. */
  serverBytes?: number;
  link?: LinkConditions;
  /** Conditions client -> server only (overrides link). */
  linkToServer?: LinkConditions;
  linkToClient?: LinkConditions;
  congestion?: CongestionAlgorithm;
  /** Simulated time limit, ms. */
  maxTimeMs?: number;
  /** Reader of the server pauses (does not read) before this time. */
  serverReadFromMs?: number;
  receiveWindow?: number;
  sendBufferBytes?: number;
  idleTimeoutMs?: number;
  keepAliveMs?: number;
  writeChunk?: number;
  /** The client calls close() (graceful) instead of finishing both directions. */
  clientCloses?: boolean;
  secretServer?: Buffer;
  /** Every datagram in both directions is lost in [fromMs, toMs) (a link outage). */
  blackout?: { fromMs: number; toMs: number };
}

export interface SimResult {
  client: RudpEngine;
  server: RudpEngine | null;
  sentToServer: Buffer;
  receivedByServer: Buffer;
  sentToClient: Buffer;
  receivedByClient: Buffer;
  clientClosed: { err: Error | null } | null;
  serverClosed: { err: Error | null } | null;
  clientEstablishedAt: number;
  timeMs: number;
  net: VirtualNetwork;
  maxServerBuffered: number;
  maxClientSendBuffered: number;
  /** Simulated time at which the server had every client byte (-1 if never). */
  serverDoneAt: number;
}

function payload(seed: number, n: number): Buffer {
  const r = seededRandom(seed);
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (r() * 256) | 0;
  return b;
}

export function simulate(o: SimOptions): SimResult {
  const net = new VirtualNetwork({ seed: o.seed, defaults: o.link ?? {} });
  const a = net.socket('10.0.0.1');
  const b = net.socket('10.0.0.2');
  if (o.linkToServer)
    net.setLink('10.0.0.1:' + a.port, '10.0.0.2:' + b.port, { ...o.link, ...o.linkToServer });
  if (o.linkToClient)
    net.setLink('10.0.0.2:' + b.port, '10.0.0.1:' + a.port, { ...o.link, ...o.linkToClient });
  const secret = Buffer.from('test-cluster-secret');
  const keys = new ClusterKeys(secret);
  const serverKeys = o.secretServer ? new ClusterKeys(o.secretServer) : keys;
  const rnd = seededRandom(o.seed ^ 0x5eed);
  const random = (n: number): Buffer => {
    const x = Buffer.alloc(n);
    for (let i = 0; i < n; i++) x[i] = (rnd() * 256) | 0;
    return x;
  };
  const base = (role: 'client' | 'server'): EngineInit => ({
    role,
    localCid: random(8),
    clusterKeys: role === 'client' ? keys : serverKeys,
    aead: 'chacha20-poly1305',
    // two AEAD implementations face each other, so every fault test also checks interop:
    // the server runs the default (openssl), the client node:crypto or libsodium by seed
    aeadBackend:
      role === 'server'
        ? selectAeadBackend('chacha20-poly1305')
        : o.seed % 2 === 0
          ? 'node:crypto'
          : 'libsodium',
    params: {
      maxDatagramSize: Math.min(1472, o.link?.mtu ?? 1472),
      initialMaxData: o.receiveWindow ?? 1024 * 1024,
      idleTimeoutMs: o.idleTimeoutMs ?? 30_000,
      maxAckDelayMs: 2,
    },
    congestion: o.congestion ?? 'bbr',
    sendBufferBytes: o.sendBufferBytes ?? 256 * 1024,
    keepAliveMs: o.keepAliveMs ?? 0,
    random,
  });

  const sentToServer = payload(o.seed, o.clientBytes);
  const sentToClient = payload(o.seed + 1, o.serverBytes ?? 0);
  const recvServer: Buffer[] = [];
  const recvClient: Buffer[] = [];
  let clientClosed: { err: Error | null } | null = null;
  let serverClosed: { err: Error | null } | null = null;
  let clientEstablishedAt = -1;
  let server: RudpEngine | null = null;
  let clientWritten = 0;
  let serverWritten = 0;
  let maxServerBuffered = 0;
  let maxClientSendBuffered = 0;
  const chunk = o.writeChunk ?? 16 * 1024;

  const client = RudpEngine.client(
    base('client'),
    parts => a.send(parts, b.port, b.host),
    {
      onEstablished: () => {
        clientEstablishedAt = net.now();
      },
      onReadable: () => {},
      onWritable: () => {},
      onClosed: err => {
        clientClosed = { err };
      },
    },
    0
  );
  a.onMessage(m => client.input(m, net.now()));
  b.onMessage(m => {
    if (server) {
      server.input(m, net.now());
      return;
    }
    const info = parseInitial(serverKeys, m);
    if (typeof info === 'string') return;
    server = RudpEngine.server(
      base('server'),
      info,
      m.length,
      parts => b.send(parts, a.port, a.host),
      {
        onEstablished: () => {},
        onReadable: () => {},
        onWritable: () => {},
        onClosed: err => {
          serverClosed = { err };
        },
      },
      net.now()
    );
  });

  const pump = (e: RudpEngine, data: Buffer, written: number): number => {
    if (e.state !== 'established') return written;
    while (written < data.length && !e.sendBufferFull()) {
      const n = Math.min(chunk, data.length - written);
      e.write(data.subarray(written, written + n));
      written += n;
    }
    return written;
  };
  const drain = (e: RudpEngine, into: Buffer[]): void => {
    for (let c = e.read(); c !== null; c = e.read()) into.push(Buffer.from(c));
  };

  const maxTime = o.maxTimeMs ?? 120_000;
  let now = 0;
  let clientFinished = false;
  let serverDoneAt = -1;
  let serverGot = 0;
  let serverFinished = false;
  const links = (c: LinkConditions): void => {
    net.setLink('10.0.0.1:' + a.port, '10.0.0.2:' + b.port, { ...o.link, ...o.linkToServer, ...c });
    net.setLink('10.0.0.2:' + b.port, '10.0.0.1:' + a.port, { ...o.link, ...o.linkToClient, ...c });
  };
  let blackout: 'before' | 'during' | 'after' = o.blackout ? 'before' : 'after';
  for (let iter = 0; iter < 5_000_000; iter++) {
    if (o.blackout && blackout === 'before' && now >= o.blackout.fromMs) {
      blackout = 'during';
      links({ lossRate: 1 });
    } else if (o.blackout && blackout === 'during' && now >= o.blackout.toMs) {
      blackout = 'after';
      links({});
    }
    // application step
    clientWritten = pump(client, sentToServer, clientWritten);
    maxClientSendBuffered = Math.max(maxClientSendBuffered, client.stats().sendBufferBytes);
    if (
      !clientFinished &&
      client.state === 'established' &&
      clientWritten === sentToServer.length
    ) {
      clientFinished = true;
      if (o.clientCloses) client.close();
      else client.finish();
    }
    drain(client, recvClient);
    const s = server as RudpEngine | null;
    if (s) {
      serverWritten = pump(s, sentToClient, serverWritten);
      if (
        !serverFinished &&
        s.state === 'established' &&
        serverWritten === sentToClient.length &&
        !o.clientCloses
      ) {
        serverFinished = true;
        s.finish();
      }
      maxServerBuffered = Math.max(maxServerBuffered, s.stats().receiveBufferBytes);
      if (o.serverReadFromMs === undefined || now >= o.serverReadFromMs) {
        const before = recvServer.length;
        drain(s, recvServer);
        for (let k = before; k < recvServer.length; k++) serverGot += recvServer[k].length;
        if (serverDoneAt < 0 && serverGot >= sentToServer.length) serverDoneAt = now;
      }
    }
    client.tick(now);
    s?.tick(now);
    let t = Math.min(client.nextDeadline(), s ? s.nextDeadline() : Infinity, net.nextEventTime());
    if (o.serverReadFromMs !== undefined && now < o.serverReadFromMs)
      t = Math.min(t, o.serverReadFromMs);
    if (o.blackout && blackout === 'before') t = Math.min(t, o.blackout.fromMs);
    if (o.blackout && blackout === 'during') t = Math.min(t, o.blackout.toMs);
    if (t === Infinity) break;
    if (t > maxTime) break;
    now = Math.max(now, t);
    net.deliverUntil(now);
  }
  return {
    client,
    server,
    sentToServer,
    receivedByServer: Buffer.concat(recvServer),
    sentToClient,
    receivedByClient: Buffer.concat(recvClient),
    clientClosed,
    serverClosed,
    clientEstablishedAt,
    timeMs: now,
    net,
    maxServerBuffered,
    maxClientSendBuffered,
    serverDoneAt,
  };
}

export { randomBytes };
