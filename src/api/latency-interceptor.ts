/**
 * The latency budget's first and last stamps of a Request on the node it entered
 * (MESHWIRE_LATENCY_TRACE=1 only; src/common/latency-trace.ts): grpc-js creates the
 * intercepting call when the HTTP/2 stream arrives (headers parsed, before the message is
 * read and decoded), and sendStatus ends the call after the reply message. Other methods
 * pass through untouched.
 */
import type {
  ServerInterceptingCallInterface,
  ServerInterceptor,
  ServerMethodDefinition,
} from '@grpc/grpc-js';
import { ServerInterceptingCall } from '@grpc/grpc-js';
import { Stage, traceBegin, traceMark } from '../common';

const REQUEST_PATH = '/messaging.v1.Messenger/Request';

export const latencyStamps: ServerInterceptor = (
  method: ServerMethodDefinition<unknown, unknown>,
  call: ServerInterceptingCallInterface
): ServerInterceptingCall => {
  if (method.path !== REQUEST_PATH) return new ServerInterceptingCall(call);
  traceBegin(Stage.GRPC_CALL_START);
  return new ServerInterceptingCall(call, {
    sendStatus: (status, next) => {
      next(status);
      traceMark(Stage.GRPC_STATUS_SENT);
    },
  });
};
