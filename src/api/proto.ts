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
import type { PeerStatus } from '../node';

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

// Wire shapes (as decoded with PROTO_LOADER_OPTIONS). Keep in step with the proto.

export interface WireMessage {
  id: string;
  topic: string;
  payload: Buffer;
  headers: Record<string, string>;
}

export interface WireTarget {
  peerId?: string;
  address?: string;
  kind?: 'peerId' | 'address';
}

export type WireAckMode = 'ACK_MODE_UNSPECIFIED' | 'ACCEPTED' | 'DELIVERED' | number;
export type WireSlowConsumerPolicy =
  'SLOW_CONSUMER_POLICY_UNSPECIFIED' | 'DROP_OLDEST' | 'DROP_NEWEST' | 'CLOSE' | number;

export interface SendRequest {
  target: WireTarget | null;
  message: WireMessage | null;
  ack: WireAckMode;
  failFast: boolean;
}
export interface SendResponse {
  id: string;
  delivered: number;
}
export interface SendStreamRequest {
  sequence: number;
  target: WireTarget | null;
  messages: WireMessage[];
  ack: WireAckMode;
}
export interface SendStreamResponse {
  sequence: number;
  ids: string[];
  delivered: number;
  errorCode: number;
  errorMessage: string;
}
export interface SubscribeRequest {
  topics: string[];
  queueGroup: string;
  maxBatch: number;
  slowConsumerPolicy: WireSlowConsumerPolicy;
  bufferSize: number;
}
export interface WireDelivery {
  message: WireMessage;
  sourcePeer: string;
  replyTo: string;
}
export interface DeliveryBatch {
  deliveries: WireDelivery[];
  dropped: number;
}
export interface RequestRequest {
  target: WireTarget | null;
  message: WireMessage | null;
  timeoutMs: number;
  failFast: boolean;
}
export interface RequestResponse {
  reply: WireMessage;
  responderPeer: string;
}
export interface RequestStreamRequest {
  requestId: string;
  target: WireTarget | null;
  message: WireMessage | null;
  timeoutMs: number;
}
export interface RequestStreamResponse {
  requestId: string;
  reply: WireMessage | null;
  errorCode: number;
  errorMessage: string;
  responderPeer: string;
}
export interface RespondRequest {
  replyTo: string;
  message: WireMessage | null;
}
export interface RespondStreamResponse {
  accepted: number;
  rejected: number;
}
/** messaging.v1.PeerInfo: the node's PeerStatus has exactly the proto's fields. */
export type WirePeerInfo = PeerStatus;
