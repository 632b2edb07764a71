/**
 * Benchmark responder, in its own process: echoes every request, over mux + rpc on TCP
 * (and on the reliable-UDP transport when it exists), or as a NATS responder.
 */
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { connect } from 'nats';
import type { NatsConnection } from 'nats';
import { serveWorker } from '../common/proc';
import { createStack } from './stack';
import type { Stack } from './stack';
import { listenRudp } from './rudp';

let tcpServer: Server | undefined;
let nc: NatsConnection | undefined;
const stacks: Stack[] = [];
let closeRudp: (() => Promise<void>) | undefined;

serveWorker(
  {
    listenTcp: async () => {
      const server = createServer(sock => {
        sock.setNoDelay(true);
        stacks.push(createStack(sock, true));
      });
      await new Promise<void>(r => server.listen(0, '127.0.0.1', r));
      tcpServer = server;
      const addr = server.address();
      return { port: typeof addr === 'object' && addr ? addr.port : 0 };
    },
    listenRudp: async () => {
      const r = await listenRudp(conn => stacks.push(createStack(conn, true)));
      closeRudp = r.close;
      return { port: r.port, stack: r.stack };
    },
    natsRespond: async (p: { port: number; subject: string }) => {
      nc = await connect({ servers: `127.0.0.1:${p.port}`, name: 'rpc-bench-responder' });
      nc.subscribe(p.subject, {
        callback: (err, m) => {
          if (!err) m.respond(m.data);
        },
      });
      await nc.flush();
      return {};
    },
    stats: () => ({
      drops: stacks.map(s => ({ mux: s.mux.drops.snapshot(), rpc: s.rpc.drops.snapshot() })),
    }),
  },
  {},
  async () => {
    for (const s of stacks) s.mux.close('bench over');
    tcpServer?.close();
    await closeRudp?.();
    await nc?.close();
  }
);
