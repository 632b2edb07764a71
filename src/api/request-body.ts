/**
 * Malformed request bodies are the client's error: INVALID_ARGUMENT, not INTERNAL.
 *
 * grpc-js calls a method's requestDeserialize itself and answers any exception with
 * INTERNAL "Error deserializing request" (BaseServerInterceptingCall.decompressAndMaybePush
 * in node_modules/@grpc/grpc-js/build/src/server-interceptors.js), before any interceptor
 * or handler runs, with no option to change the code. So deserializers are wrapped to
 * return a MalformedBody instead of throwing, and the rejectMalformedBodies interceptor
 * answers that with INVALID_ARGUMENT (through src/api/status.ts) without passing it on.
 */
import type {
  ServerInterceptingCallInterface,
  ServerInterceptor,
  ServerMethodDefinition,
  ServiceDefinition,
} from '@grpc/grpc-js';
import { ServerInterceptingCall } from '@grpc/grpc-js';
import { InvalidArgumentError } from '../common';
import { grpcCodeOf } from './status';

/** Longest decoder error text quoted back to the client. */
const MAX_REASON_CHARS = 160;

/** What a wrapped deserializer returns for bytes that are not a valid message. */
export class MalformedBody {
  constructor(readonly reason: string) {}
}

/** The error a malformed body is answered with. */
export function malformedBodyError(reason: string): InvalidArgumentError {
  const short =
    reason.length > MAX_REASON_CHARS ? `${reason.slice(0, MAX_REASON_CHARS)}...` : reason;
  return new InvalidArgumentError(`malformed request body: ${short}`);
}

/** A deserializer that returns a MalformedBody instead of throwing. */
export function tolerant(deserialize: (b: Buffer) => unknown): (b: Buffer) => unknown {
  return (b: Buffer) => {
    try {
      return deserialize(b);
    } catch (err) {
      return new MalformedBody(err instanceof Error ? err.message : String(err));
    }
  };
}

/** A copy of a service definition whose request deserializers never throw. */
export function withTolerantDeserializers(def: ServiceDefinition): ServiceDefinition {
  const out: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(def)) {
    out[name] = { ...method, requestDeserialize: tolerant(method.requestDeserialize) };
  }
  return out as ServiceDefinition;
}

/**
 * Ends a call whose request message is a MalformedBody with INVALID_ARGUMENT. Put it last
 * in the server's interceptors (next to the handlers), so the status passes through the
 * others (spans, the auth guard's release of per-client limits).
 */
export const rejectMalformedBodies: ServerInterceptor = (
  _method: ServerMethodDefinition<unknown, unknown>,
  call: ServerInterceptingCallInterface
): ServerInterceptingCall => {
  let rejected = false;
  return new ServerInterceptingCall(call, {
    start: next =>
      next({
        onReceiveMessage: (message, msgNext) => {
          if (rejected) return;
          if (message instanceof MalformedBody) {
            rejected = true;
            const err = malformedBodyError(message.reason);
            call.sendStatus({ code: grpcCodeOf(err), details: err.message });
            return;
          }
          msgNext(message);
        },
        onReceiveHalfClose: halfCloseNext => {
          if (!rejected) halfCloseNext();
        },
      }),
  });
};
