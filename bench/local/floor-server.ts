/**
 * The gRPC floor: a bare grpc-js echo server in its own process (forked by run.ts).
 * Commands: `listen` -> { port }.
 */
import * as grpc from '@grpc/grpc-js';
import { join } from 'node:path';
import { loadService } from '../common/grpc';
import { repoRoot } from '../common/results';
import { serveWorker } from '../common/proc';

interface EchoMessage {
  payload: Buffer;
}

interface StreamRequest {
  payload: Buffer;
  maxMessages: number;
  maxMs: number;
}

const server = new grpc.Server({
  'grpc.max_receive_message_length': -1,
  'grpc.max_send_message_length': -1,
});

const echo = loadService(join(repoRoot(), 'bench', 'local', 'echo.proto'), 'bench.echo.v1.Echo');

server.addService(echo.definition, {
  Unary(
    call: grpc.ServerUnaryCall<EchoMessage, EchoMessage>,
    cb: grpc.sendUnaryData<EchoMessage>
  ): void {
    cb(null, { payload: call.request.payload });
  },
  ServerStream(call: grpc.ServerWritableStream<StreamRequest, EchoMessage>): void {
    const { payload, maxMessages, maxMs } = call.request;
    const deadline = Date.now() + Math.min(maxMs || 60_000, 120_000);
    const limit = Math.min(maxMessages || 10_000_000, 50_000_000);
    const msg: EchoMessage = { payload };
    let sent = 0;
    let done = false;
    call.on('cancelled', () => {
      done = true;
    });
    const pump = (): void => {
      while (!done) {
        if (sent >= limit || (sent % 1024 === 0 && Date.now() > deadline)) {
          done = true;
          call.end();
          return;
        }
        sent++;
        if (!call.write(msg)) {
          call.once('drain', pump);
          return;
        }
      }
    };
    pump();
  },
});

serveWorker(
  {
    listen: () =>
      new Promise<{ port: number }>((resolve, reject) => {
        server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) =>
          err ? reject(err) : resolve({ port })
        );
      }),
  },
  {},
  () =>
    new Promise<void>(resolve => {
      server.tryShutdown(() => resolve());
    })
);
