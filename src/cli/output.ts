/**
 * How the client commands print: every JSON line is one message of
 * proto/messaging/v1/messaging.proto in the proto3 JSON mapping, the form `buf curl` and
 * grpcurl print: lowerCamelCase field names, bytes as base64, 64-bit integers as strings,
 * enums by name. Fields holding their default value are printed too (like
 * `buf curl --emit-defaults`), so a script always finds every field.
 *
 * `--text` prints payloads as UTF-8 text instead of base64 when the bytes are valid UTF-8
 * (a payload that is not keeps base64 and gains `"payloadEncoding": "base64"`); `--raw`
 * writes the payload bytes alone, exactly as received.
 */
import type { Type } from 'protobufjs';
import { loadSync } from 'protobufjs';
import type { ProtoGrpcType } from '../api';

/** Messages of the messaging.v1 package the CLI prints (names checked against the proto). */
const PRINTED_MESSAGES = [
  'SendResponse',
  'Delivery',
  'RequestResponse',
  'PeerInfo',
  'RequestManyResponse',
] as const satisfies readonly (keyof ProtoGrpcType['messaging']['v1'])[];
export type PrintedMessage = (typeof PRINTED_MESSAGES)[number];

let types: Map<string, Type> | undefined;
let messagingProto: string | undefined;

/** The messaging.v1 proto file the printed messages are read from (set when connecting). */
export function useMessagingProto(file: string): void {
  messagingProto = file;
}

function messageType(name: PrintedMessage): Type {
  if (!types) {
    if (!messagingProto) throw new Error('output: useMessagingProto() before printing');
    // protobufjs, like proto-loader with keepCase false, names fields in lowerCamelCase.
    const root = loadSync(messagingProto);
    types = new Map();
    for (const n of PRINTED_MESSAGES) {
      types.set(n, root.lookupType(`messaging.v1.${n}`));
    }
  }
  return types.get(name) as Type;
}

/** The proto3 JSON form of `value` (a decoded message of type `name`). */
export function protoJson(name: PrintedMessage, value: object): Record<string, unknown> {
  const type = messageType(name);
  return type.toObject(type.fromObject(value), {
    json: true,
    longs: String,
    enums: String,
    bytes: String,
    defaults: true,
  });
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The payload as text when it is valid UTF-8, else undefined. */
export function utf8OrUndefined(bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

export interface PayloadOptions {
  /** Payloads as UTF-8 text when valid (--text). */
  text?: boolean;
}

/**
 * One JSON line for a message of type `name`; with `text`, the payload of the message
 * (at `payloadPath` inside it) is UTF-8 text when valid.
 */
export function jsonLine(
  name: PrintedMessage,
  value: object,
  payload: { path: string[]; bytes: Uint8Array } | undefined,
  opts: PayloadOptions = {}
): string {
  const out = protoJson(name, value);
  if (opts.text && payload) {
    let holder: Record<string, unknown> = out;
    for (const key of payload.path) holder = holder[key] as Record<string, unknown>;
    const text = utf8OrUndefined(payload.bytes);
    if (text !== undefined) holder.payload = text;
    else holder.payloadEncoding = 'base64';
  }
  return JSON.stringify(out);
}

/** Writes `bytes` to stdout unchanged; resolves once they are handed to the OS. */
export function writeRaw(bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) =>
    process.stdout.write(bytes, err => (err ? reject(err) : resolve()))
  );
}
