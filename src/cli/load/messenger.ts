/** The slice of the messaging.v1.Messenger client the load generators use (proto3 JSON names). */
import type {
  ClientDuplexStream,
  ClientReadableStream,
  ClientWritableStream,
  ServiceError,
} from '@grpc/grpc-js';
import type { DeliveryBatch } from '../../app';

export interface LoadMessage {
  topic: string;
  payload: Buffer;
}

export interface SendStreamResponseShape {
  sequence: number | string;
  errorCode: number;
  errorMessage: string;
}

export interface RequestStreamResponseShape {
  requestId: string;
  reply?: { payload: Buffer } | null;
  errorCode: number;
  errorMessage: string;
}

export interface MessengerApi {
  Subscribe(req: {
    topics: string[];
    queueGroup?: string;
    maxBatch?: number;
    bufferSize?: number;
  }): ClientReadableStream<DeliveryBatch>;
  SendStream(): ClientDuplexStream<
    { sequence: number; messages: LoadMessage[]; target?: { peerId?: string; address?: string } },
    SendStreamResponseShape
  >;
  RequestStream(): ClientDuplexStream<
    {
      requestId: string;
      message: LoadMessage;
      timeoutMs: number;
      target?: { peerId?: string; address?: string };
    },
    RequestStreamResponseShape
  >;
  RespondStream(
    cb: (err: ServiceError | null) => void
  ): ClientWritableStream<{ replyTo: string; message: LoadMessage }>;
}

/** What stops a load loop: a count, a duration, or a stop request (Ctrl-C). */
export interface LoadLimits {
  /** Messages or requests in all (across publishers / requesters). */
  maxMessages: number;
  /** Wall time of the sending phase. */
  maxMs: number;
}

/** A stop flag shared by the loops of one run. */
export class StopSignal {
  stopped = false;
  private readonly waiters = new Set<() => void>();

  stop(): void {
    this.stopped = true;
    for (const w of this.waiters) w();
    this.waiters.clear();
  }

  /** Calls `fn` on stop (at once when stopped already); returns the unsubscribe. */
  onStop(fn: () => void): () => void {
    if (this.stopped) {
      fn();
      return () => undefined;
    }
    this.waiters.add(fn);
    return () => this.waiters.delete(fn);
  }

  /** Resolves after `ms`, or sooner on stop. */
  sleep(ms: number): Promise<void> {
    return new Promise(resolve => {
      const done = (): void => {
        clearTimeout(t);
        this.waiters.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }
}

/** Resolves when the stream's response headers arrive: the subscription is live on the node. */
export function subscribed(
  call: ClientReadableStream<DeliveryBatch>,
  maxMs = 10_000
): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`subscription not live after ${maxMs} ms`)), maxMs);
    call.once('metadata', () => {
      clearTimeout(t);
      resolve();
    });
    call.once('error', (e: Error) => {
      clearTimeout(t);
      reject(e);
    });
  });
}
