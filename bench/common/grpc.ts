/**
 * gRPC helpers for benchmark clients and servers: load a service from a .proto with the
 * project's proto-loader options (the node uses the same).
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

export interface LoadedService {
  /** Client constructor: `new ctor(address, credentials, options)`. */
  ctor: grpc.ServiceClientConstructor;
  /** Service definition for `server.addService`. */
  definition: grpc.ServiceDefinition;
}

/** Loads `fullName` (e.g. `messaging.v1.Messenger`) from `protoFile`. */
export function loadService(
  protoFile: string,
  fullName: string,
  includeDirs: string[] = []
): LoadedService {
  const def = protoLoader.loadSync(protoFile, { ...PROTO_LOADER_OPTIONS, includeDirs });
  const root = grpc.loadPackageDefinition(def);
  let cur: unknown = root;
  for (const part of fullName.split('.')) {
    cur = (cur as Record<string, unknown> | undefined)?.[part];
  }
  const ctor = cur as grpc.ServiceClientConstructor | undefined;
  if (typeof ctor !== 'function' || !ctor.service) {
    throw new Error(`service ${fullName} not found in ${protoFile}`);
  }
  return { ctor, definition: ctor.service };
}

/**
 * Channel options for bench clients: no message size limit (16 KiB x 256 batches), and an
 * 8 MiB HTTP/2 receive window (the default 64 KiB stalls a high-rate subscriber on
 * window updates; meshwire's docs recommend the same to users).
 */
export const BENCH_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': -1,
  'grpc.max_send_message_length': -1,
  'grpc-node.flow_control_window': 8 * 1024 * 1024,
};

/** Waits until the channel of `client` is ready (bounded). */
export function waitReady(client: grpc.Client, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    client.waitForReady(Date.now() + timeoutMs, err => (err ? reject(err) : resolve()));
  });
}
