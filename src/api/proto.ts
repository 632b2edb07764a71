/**
 * Loads proto/messaging/v1/messaging.proto with the options every part of meshwire
 * (server, CLI, tests, benchmarks) shares, and the TypeScript shapes of its messages.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { GrpcObject, ServiceClientConstructor } from '@grpc/grpc-js';
import { loadPackageDefinition } from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import { loadSync } from '@grpc/proto-loader';
import type { AckMode, PeerStatus, SlowConsumerPolicy } from '../node';
import type { AckMode__Output } from './generated/messaging/v1/AckMode';
import type { Delivery__Output } from './generated/messaging/v1/Delivery';
import type { DeliveryBatch__Output } from './generated/messaging/v1/DeliveryBatch';
import type { Message__Output } from './generated/messaging/v1/Message';
import type { PeerInfo__Output } from './generated/messaging/v1/PeerInfo';
import type { RequestRequest__Output } from './generated/messaging/v1/RequestRequest';
import type { RequestResponse__Output } from './generated/messaging/v1/RequestResponse';
import type { RequestStreamRequest__Output } from './generated/messaging/v1/RequestStreamRequest';
import type { RequestStreamResponse__Output } from './generated/messaging/v1/RequestStreamResponse';
import type { RespondRequest__Output } from './generated/messaging/v1/RespondRequest';
import type { RespondStreamResponse__Output } from './generated/messaging/v1/RespondStreamResponse';
import type { RequestManyRequest__Output } from './generated/messaging/v1/RequestManyRequest';
import type { RequestManyResponse__Output } from './generated/messaging/v1/RequestManyResponse';
import type { SendRequest__Output } from './generated/messaging/v1/SendRequest';
import type { SendResponse__Output } from './generated/messaging/v1/SendResponse';
import type { SendStreamRequest__Output } from './generated/messaging/v1/SendStreamRequest';
import type { SendStreamResponse__Output } from './generated/messaging/v1/SendStreamResponse';
import type { SlowConsumerPolicy__Output } from './generated/messaging/v1/SlowConsumerPolicy';
import type { SubscribeRequest__Output } from './generated/messaging/v1/SubscribeRequest';
import type { Target__Output } from './generated/messaging/v1/Target';

/** proto-loader options: camelCase fields, numbers for 64-bit ints, enum names. */
export const PROTO_LOADER_OPTIONS = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
} as const;

export const MESSAGING_PROTO = 'messaging/v1/messaging.proto';

/** Finds the repository's proto/ folder from here (src/api or dist/src/api). */
export function protoDir(): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'proto');
    if (existsSync(join(candidate, MESSAGING_PROTO))) return candidate;
    dir = dirname(dir);
  }
  throw new Error(`cannot find proto/${MESSAGING_PROTO} above ${__dirname}`);
}

let cached: { definition: PackageDefinition; grpc: GrpcObject } | undefined;

/** The messaging.v1 package definition (loaded once). */
export function messagingPackage(): { definition: PackageDefinition; grpc: GrpcObject } {
  if (!cached) {
    const definition = loadSync(MESSAGING_PROTO, {
      ...PROTO_LOADER_OPTIONS,
      includeDirs: [protoDir()],
    });
    cached = { definition, grpc: loadPackageDefinition(definition) };
  }
  return cached;
}

/** Client constructors for messaging.v1.Messenger and messaging.v1.Peers. */
export function serviceConstructors(): {
  Messenger: ServiceClientConstructor;
  Peers: ServiceClientConstructor;
} {
  const v1 = (messagingPackage().grpc.messaging as GrpcObject).v1 as GrpcObject;
  return {
    Messenger: v1.Messenger as ServiceClientConstructor,
    Peers: v1.Peers as ServiceClientConstructor,
  };
}

// Wire shapes, as decoded with PROTO_LOADER_OPTIONS: the types proto-loader-gen-types makes
// from the proto (src/api/generated/, `make types`), so a field renamed or added in the proto
// changes them. Ours only narrow what the node guarantees: a message it sends is always set,
// and an enum number the proto does not name stays a number (codec.ts) for the handlers to
// refuse.

/** A decoded enum: a name of the proto, or a number it does not name. */
type DecodedEnum<Name extends string> = Name | number;

export type WireMessage = Message__Output;
export type WireTarget = Target__Output;
export type WireAckMode = DecodedEnum<AckMode__Output>;
export type WireSlowConsumerPolicy = DecodedEnum<SlowConsumerPolicy__Output>;

export type SendRequest = Omit<SendRequest__Output, 'ack'> & { ack: WireAckMode };
export type SendResponse = SendResponse__Output;
export type SendStreamRequest = Omit<SendStreamRequest__Output, 'ack'> & { ack: WireAckMode };
export type SendStreamResponse = SendStreamResponse__Output;
export type SubscribeRequest = Omit<SubscribeRequest__Output, 'slowConsumerPolicy'> & {
  slowConsumerPolicy: WireSlowConsumerPolicy;
};
/** A delivery the node sends always carries its message. */
export type WireDelivery = Omit<Delivery__Output, 'message'> & { message: WireMessage };
export type DeliveryBatch = Omit<DeliveryBatch__Output, 'deliveries'> & {
  deliveries: WireDelivery[];
};
export type RequestRequest = RequestRequest__Output;
/** A RequestResponse the node sends always carries the reply. */
export type RequestResponse = Omit<RequestResponse__Output, 'reply'> & { reply: WireMessage };
export type RequestStreamRequest = RequestStreamRequest__Output;
export type RequestStreamResponse = RequestStreamResponse__Output;
export type RespondRequest = RespondRequest__Output;
export type RespondStreamResponse = RespondStreamResponse__Output;
export type RequestManyRequest = RequestManyRequest__Output;
/** A RequestManyResponse the node sends always carries the reply. */
export type RequestManyResponse = Omit<RequestManyResponse__Output, 'reply'> & {
  reply: WireMessage;
};
/**
 * `T` when `Ours` has exactly its fields, else `never`; `Ours` not assignable to `T` fails
 * the build where the type is named. For the node's own types (src/node may not import
 * from src/api) that must match the proto.
 */
type Exactly<T, Ours extends T> = [T] extends [Ours] ? T : never;

/** messaging.v1.PeerInfo: the node's PeerStatus has exactly the proto's fields. */
export type WirePeerInfo = Exactly<PeerInfo__Output, PeerStatus>;
/** The node's ack modes are the proto's less ACK_MODE_UNSPECIFIED (read as ACCEPTED). */
export type NodeAckMode = Exactly<Exclude<AckMode__Output, 'ACK_MODE_UNSPECIFIED'>, AckMode>;
/** The node's policies are the proto's less SLOW_CONSUMER_POLICY_UNSPECIFIED (DROP_OLDEST). */
export type NodeSlowConsumerPolicy = Exactly<
  Exclude<SlowConsumerPolicy__Output, 'SLOW_CONSUMER_POLICY_UNSPECIFIED'>,
  SlowConsumerPolicy
>;
