/**
 * Test helpers: a real node on ephemeral ports, promisified gRPC calls, and waiting.
 */
import type {
  Client,
  ClientDuplexStream,
  ClientReadableStream,
  ClientWritableStream,
  Metadata,
  ServiceError,
} from '@grpc/grpc-js';
import { listenFlags } from './processes';
import { waitFor as waitUntil } from './wait';
import type { DeliveryBatch, MeshwireClients, WireDelivery } from '../../src/api';
import { createClients } from '../../src/api';
import { SUBSCRIPTION_ID_HEADER } from '../../src/api/messenger-service';
import type { NodeApp, NodeAppInit, NodeConfig } from '../../src/app';
import { loadConfig, startNode } from '../../src/app';

export interface TestNode {
  /** The node as src/app assembles it (the same assembly `meshwire serve` runs). */
  server: NodeApp;
  clients: MeshwireClients;
  address: string;
  close(): Promise<void>;
}

/** Starts a node on 127.0.0.1 with ephemeral ports; `overrides` are config keys. */
export async function startTestNode(
  overrides: Partial<NodeConfig> = {},
  metrics = false,
  appInit: Omit<NodeAppInit, 'config'> = {}
): Promise<TestNode> {
  const base = loadConfig({
    argv: [...listenFlags(0, 0, 0)],
    env: {},
  });
  const config: NodeConfig = { ...base, nodeId: 'test-node', ...overrides };
  const server = await startNode({ config, metrics, ...appInit });
  return withClients(server);
}

/** A started node with gRPC clients connected to it; close() closes both. */
export function withClients(server: NodeApp): TestNode {
  const clients = createClients(server.grpcAddress);
  return {
    server,
    clients,
    address: server.grpcAddress,
    close: async () => {
      clients.close();
      await server.shutdown();
    },
  };
}

type Method = (...args: unknown[]) => unknown;
function method(client: Client, name: string): Method {
  // Generated grpc-js clients expose RPCs as methods named after the proto.
  return (client as unknown as Record<string, Method>)[name].bind(client);
}

/** A unary call as a promise. */
export function unary<Res = Record<string, unknown>>(
  client: Client,
  name: string,
  req: unknown,
  deadlineMs = 10_000
): Promise<Res> {
  return new Promise((resolve, reject) => {
    method(client, name)(
      req,
      { deadline: Date.now() + deadlineMs },
      (err: ServiceError | null, res: Res) => (err ? reject(err) : resolve(res))
    );
  });
}

export function serverStream<Res>(
  client: Client,
  name: string,
  req: unknown
): ClientReadableStream<Res> {
  return method(client, name)(req) as ClientReadableStream<Res>;
}

export function bidi<Req, Res>(client: Client, name: string): ClientDuplexStream<Req, Res> {
  return method(client, name)() as ClientDuplexStream<Req, Res>;
}

export function clientStream<Req, Res>(
  client: Client,
  name: string
): { call: ClientWritableStream<Req>; result: Promise<Res> } {
  let call!: ClientWritableStream<Req>;
  const result = new Promise<Res>((resolve, reject) => {
    call = method(
      client,
      name
    )((err: ServiceError | null, res: Res) =>
      err ? reject(err) : resolve(res)
    ) as ClientWritableStream<Req>;
  });
  return { call, result };
}

/**
 * wait.ts's waitFor with the argument order the tests were written with; without `what`
 * the timeout error quotes the predicate's source.
 */
export function waitFor(predicate: () => boolean, timeoutMs = 5000, what?: string): Promise<void> {
  return waitUntil(what ?? String(predicate), predicate, timeoutMs);
}

/** Collects deliveries from a Subscribe stream. */
export function collect<T>(stream: ClientReadableStream<{ deliveries: T[]; dropped: number }>): {
  items: T[];
  batches: number;
  dropped: number;
  error?: ServiceError;
  ended: boolean;
} {
  const state = {
    items: [] as T[],
    batches: 0,
    dropped: 0,
    error: undefined as ServiceError | undefined,
    ended: false,
  };
  stream.on('data', (b: { deliveries: T[]; dropped: number }) => {
    state.batches++;
    state.dropped += b.dropped;
    state.items.push(...b.deliveries);
  });
  stream.on('error', (e: ServiceError) => (state.error = e));
  stream.on('end', () => (state.ended = true));
  return state;
}

/**
 * Resolves with a Subscribe call's response headers, which the node sends once the
 * subscription is live on it and on every peer node connected at that moment: a client
 * may publish (here or on any connected node) as soon as this resolves. Rejects if the
 * call fails or ends first, or after `timeoutMs`. Attach the stream's own 'error'
 * handler (collect does) for errors after this settles.
 */
export function subscribed(
  stream: ClientReadableStream<unknown>,
  timeoutMs = 10_000
): Promise<Metadata> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      stream.off('metadata', onMetadata);
      stream.off('error', onError);
      stream.off('end', onEnd);
      stream.off('status', onEnd);
    };
    const onMetadata = (md: Metadata): void => {
      // Only the node's "subscription is live" headers count.
      if (md.get(SUBSCRIPTION_ID_HEADER).length === 0) return;
      done();
      resolve(md);
    };
    const onError = (err: ServiceError): void => {
      done();
      reject(err);
    };
    const onEnd = (): void => {
      done();
      reject(new Error('Subscribe ended before its response headers'));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no Subscribe response headers within ${timeoutMs} ms`));
    }, timeoutMs);
    stream.on('metadata', onMetadata);
    stream.on('error', onError);
    stream.on('end', onEnd);
    stream.on('status', onEnd);
  });
}

/** The subscription id (e.g. "s12") in Subscribe's response headers. */
export function subscriptionId(headers: Metadata): string {
  return String(headers.get(SUBSCRIPTION_ID_HEADER)[0]);
}

/**
 * Opens a Subscribe on `messenger` (a client), collects its deliveries, and resolves once
 * its response headers say the subscription is live; rejects if the call fails first.
 */
export async function openSubscription(
  messenger: Client,
  req: Record<string, unknown>,
  timeoutMs = 10_000
): Promise<{
  stream: ClientReadableStream<DeliveryBatch>;
  state: ReturnType<typeof collect<WireDelivery>>;
  id: string;
}> {
  const stream = serverStream<DeliveryBatch>(messenger, 'Subscribe', req);
  const state = collect<WireDelivery>(stream);
  const headers = await subscribed(stream, timeoutMs);
  return { stream, state, id: subscriptionId(headers) };
}

/** The node's open subscriptions (for waiting on them going down after a cancel). */
export function subscriptions(node: TestNode): number {
  return node.server.node.router.subscriptionCount;
}
