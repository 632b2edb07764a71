/**
 * A message as it travels through the node: the same shape as messaging.v1.Message, so
 * the API layer can pass decoded protobuf objects through without copying.
 */
export interface Message {
  /** Unique id; assigned by the first node when empty. */
  id: string;
  topic: string;
  payload: Buffer;
  headers: Record<string, string>;
}

/** Where a Send or Request goes. `undefined` means: by interest (no target). */
export type Target = { peerId: string } | { address: string } | undefined;

/** A subscription pattern with its queue group ('' = none), as nodes advertise them. */
export interface Interest {
  pattern: string;
  queueGroup: string;
}
