/**
 * startNode (src/app) when a listener cannot bind: a ListenError naming the config key and
 * address, and what was already bound (the UDP peer port, the gRPC port) is released.
 */
import { createSocket } from 'node:dgram';
import type { Server } from 'node:net';
import { createServer } from 'node:net';
import test from 'ava';
import type { NodeConfig } from '../../../src/app';
import { loadConfig, startNode } from '../../../src/app';
import { freePorts } from '../../helpers/ports';
import { listenFlags } from '../../helpers/processes';

function listenTcp(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => resolve(srv));
  });
}

/** Binds and closes a UDP socket on the port: resolves true if the port was free. */
function udpFree(port: number): Promise<boolean> {
  return new Promise(resolve => {
    const u = createSocket('udp4');
    u.once('error', () => resolve(false));
    u.bind(port, '127.0.0.1', () => u.close(() => resolve(true)));
  });
}

async function tcpFree(port: number): Promise<boolean> {
  try {
    const srv = await listenTcp(port);
    await new Promise(resolve => srv.close(resolve));
    return true;
  } catch {
    return false;
  }
}

function config(g: number, p: number, m: number): NodeConfig {
  return loadConfig({
    argv: [...listenFlags(g, p, m)],
    env: {},
  });
}

test('gRPC port taken: ListenError naming grpcListen; the UDP peer port is released', async t => {
  const [g, p, m] = await freePorts(3);
  const holder = await listenTcp(g);
  try {
    const err = await t.throwsAsync(startNode({ config: config(g, p, m) }));
    t.is(err?.name, 'ListenError');
    t.is(err?.message, `grpcListen 127.0.0.1:${g}: address already in use`);
    t.true(await udpFree(p), 'the peer port was released');
    t.true(await tcpFree(m), 'metrics never bound');
  } finally {
    holder.close();
  }
});

test('metrics port taken: ListenError naming metricsListen; UDP and gRPC ports are released', async t => {
  const [g, p, m] = await freePorts(3);
  const holder = await listenTcp(m);
  try {
    const err = await t.throwsAsync(startNode({ config: config(g, p, m) }));
    t.is(err?.name, 'ListenError');
    t.is(err?.message, `metricsListen 127.0.0.1:${m}: address already in use`);
    t.true(await udpFree(p), 'the peer port was released');
    t.true(await tcpFree(g), 'the gRPC port was released');
  } finally {
    holder.close();
  }
});

test('peer port taken: ListenError naming peerListen', async t => {
  const [g, p, m] = await freePorts(3);
  const u = createSocket('udp4');
  await new Promise<void>(resolve => u.bind(p, '127.0.0.1', () => resolve()));
  try {
    const err = await t.throwsAsync(startNode({ config: config(g, p, m) }));
    t.is(err?.name, 'ListenError');
    t.is(err?.message, `peerListen 127.0.0.1:${p}: address already in use`);
    t.true(await tcpFree(g), 'gRPC never bound');
  } finally {
    u.close();
  }
});
