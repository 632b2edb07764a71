/**
 * Validation of what clients hand a node: messages (topic, payload size, id, headers),
 * Subscribe options and reply tokens. Each refusal is one InvalidArgumentError saying
 * what is wrong and what is allowed.
 */
import { randomBytes } from 'node:crypto';
import type { Message } from '../common';
import { InvalidArgumentError, quote } from '../common';
import type { SubscribeOptions } from './types';
import { validateTopic } from './topics';

/** Limits on message headers (trace context and application metadata fit easily). */
export const MAX_HEADERS = 64;
/** Same as the rpc envelope's limit, so whatever a node accepts can cross to a peer. */
export const MAX_HEADER_BYTES = 16 * 1024;

/** Largest client-chosen message id, in UTF-8 bytes. */
export const MAX_MESSAGE_ID_BYTES = 256;
/** Largest header key, in UTF-8 bytes (values are bounded by MAX_HEADER_BYTES in total). */
export const MAX_HEADER_KEY_BYTES = 256;
/** Largest reply_to a Respond may carry (tokens this cluster issues are far shorter). */
export const MAX_REPLY_TO_BYTES = 512;
/** Patterns one Subscribe may carry. */
export const MAX_PATTERNS_PER_SUBSCRIPTION = 256;
/** Largest max_batch a subscriber may ask for. */
export const MAX_BATCH_LIMIT = 1024;
/** Largest buffer_size a subscriber may ask for. */
export const MAX_SUBSCRIBER_BUFFER = 65536;

const EMPTY_PAYLOAD = Buffer.alloc(0);
const NO_HEADERS: Record<string, string> = Object.freeze({});
/** The two-digit base-36 numbers "00" to "zz", for message ids. */
const ID_DIGITS: readonly string[] = Array.from({ length: 36 * 36 }, (_, i) =>
  i.toString(36).padStart(2, '0')
);

/** Valid topics remembered to skip re-validation on the hot path. */
const VALID_TOPIC_CACHE = 10_000;

function checkIdBytes(id: string, what: string): void {
  const bytes = Buffer.byteLength(id);
  if (bytes > MAX_MESSAGE_ID_BYTES) {
    throw new InvalidArgumentError(
      `${what}: message.id ${quote(id)} is too long; at most ${MAX_MESSAGE_ID_BYTES} bytes are allowed`
    );
  }
}

/** Checks client messages and assigns ids unique to this process. */
export class MessageValidator {
  private readonly idPrefix = randomBytes(6).toString('base64url');
  private idCounter = 0;
  /** idCounter / ID_DIGITS.length of the last id made, and idPrefix with it in base 36. */
  private idHigh = -1;
  private idHead = '';
  private readonly validTopics = new Set<string>();

  constructor(private readonly maxMessageBytes: number) {}

  /** Validates a message from a client and assigns its id. Throws InvalidArgumentError. */
  prepare(message: Message | null | undefined, what: 'send' | 'request' | 'reply'): Message {
    if (!message) {
      throw new InvalidArgumentError(
        `${what}: message is missing: set message.topic (and message.payload, which may be empty)`
      );
    }
    if ((what !== 'reply' || message.topic) && !this.validTopics.has(message.topic)) {
      validateTopic(message.topic);
      // Publishers reuse few topics: remember valid ones (bounded) to skip re-validation.
      if (this.validTopics.size >= VALID_TOPIC_CACHE) this.validTopics.clear();
      this.validTopics.add(message.topic);
    }
    const size = message.payload?.length ?? 0;
    if (size > this.maxMessageBytes) {
      throw new InvalidArgumentError(
        `${what}: payload is ${size} bytes; the maximum is ${this.maxMessageBytes} (maxMessageBytes)`
      );
    }
    // A UTF-16 unit is at most 3 UTF-8 bytes: count bytes only for ids that may be too long.
    if (message.id && message.id.length * 3 > MAX_MESSAGE_ID_BYTES) checkIdBytes(message.id, what);
    // Headers are read, never changed in place (trace context goes into a copy), so a
    // decoder's shared frozen empty map is fine as it is.
    const headers = message.headers ?? NO_HEADERS;
    let units = 0;
    let count = 0;
    for (const k in headers) {
      count++;
      if (k.length * 3 > MAX_HEADER_KEY_BYTES && Buffer.byteLength(k) > MAX_HEADER_KEY_BYTES) {
        throw new InvalidArgumentError(
          `${what}: header key ${quote(k)} is too long; keys may have at most ${MAX_HEADER_KEY_BYTES} bytes`
        );
      }
      units += k.length + (headers[k]?.length ?? 0);
    }
    // Exact UTF-8 bytes only when the UTF-16 length allows going over (what the wire checks).
    let headerBytes = units;
    if (units * 3 > MAX_HEADER_BYTES) {
      headerBytes = 0;
      for (const k in headers)
        headerBytes += Buffer.byteLength(k) + Buffer.byteLength(headers[k] ?? '');
    }
    if (count > MAX_HEADERS || headerBytes > MAX_HEADER_BYTES) {
      throw new InvalidArgumentError(
        `${what}: ${count} headers of ${headerBytes} bytes; at most ${MAX_HEADERS} headers and ${MAX_HEADER_BYTES} bytes are allowed`
      );
    }
    if (!message.id) {
      // `${idPrefix}${counter.toString(36)}`, with toString(36) (a runtime call, 30 ns a
      // message) once per 1296 ids: the last two base-36 digits come from a table.
      const n = this.idCounter++;
      if (n < ID_DIGITS.length) message.id = `${this.idPrefix}${n.toString(36)}`;
      else {
        const high = Math.floor(n / ID_DIGITS.length);
        if (high !== this.idHigh) {
          this.idHigh = high;
          this.idHead = `${this.idPrefix}${high.toString(36)}`;
        }
        message.id = this.idHead + ID_DIGITS[n - high * ID_DIGITS.length];
      }
    }
    // No headers: one shared frozen map instead of the message's own empty one, which would
    // live as long as the message waits in subscriber buffers (one GC survivor fewer per
    // message). Headers are never changed in place (trace context goes into a copy).
    message.headers = count === 0 ? NO_HEADERS : headers;
    // protobufjs leaves an absent bytes field as its prototype's default (an empty array)
    if (!Buffer.isBuffer(message.payload)) {
      const p = message.payload as Uint8Array | undefined;
      message.payload =
        p && p.length > 0 ? Buffer.from(p.buffer, p.byteOffset, p.length) : EMPTY_PAYLOAD;
    }
    return message;
  }
}

/** Checks a Respond's reply_to before it is parsed. Throws InvalidArgumentError. */
export function checkReplyTo(replyTo: string): void {
  if (!replyTo) {
    throw new InvalidArgumentError(
      'respond: reply_to is missing: pass the Delivery.reply_to of the request'
    );
  }
  if (replyTo.length > MAX_REPLY_TO_BYTES) {
    throw new InvalidArgumentError(
      `respond: reply_to is ${Buffer.byteLength(replyTo)} bytes; reply tokens have at most ${MAX_REPLY_TO_BYTES}: pass the Delivery.reply_to of the request unchanged`
    );
  }
}

/**
 * Checks Subscribe options and fills in the defaults (`defaultBufferSize`: the node's
 * subscriberBufferSize). Throws InvalidArgumentError.
 */
export function checkSubscribeOptions(
  opts: SubscribeOptions,
  defaultBufferSize: number
): { maxBatch: number; bufferSize: number } {
  if (!opts.patterns || opts.patterns.length === 0) {
    throw new InvalidArgumentError(
      'subscribe: topics is empty: give at least one pattern, e.g. "orders.>"'
    );
  }
  if (opts.patterns.length > MAX_PATTERNS_PER_SUBSCRIPTION) {
    throw new InvalidArgumentError(
      `subscribe: ${opts.patterns.length} topics; at most ${MAX_PATTERNS_PER_SUBSCRIPTION} patterns per subscription`
    );
  }
  const maxBatch = opts.maxBatch || 1;
  if (maxBatch > MAX_BATCH_LIMIT) {
    throw new InvalidArgumentError(
      `subscribe: max_batch ${maxBatch} is over the limit of ${MAX_BATCH_LIMIT}`
    );
  }
  const bufferSize = opts.bufferSize || defaultBufferSize;
  if (bufferSize > MAX_SUBSCRIBER_BUFFER) {
    throw new InvalidArgumentError(
      `subscribe: buffer_size ${bufferSize} is over the limit of ${MAX_SUBSCRIBER_BUFFER}`
    );
  }
  if (opts.queueGroup && !/^[A-Za-z0-9_.-]{1,128}$/.test(opts.queueGroup)) {
    throw new InvalidArgumentError(
      `subscribe: queue_group ${quote(opts.queueGroup)} is not valid: use 1 to 128 characters of A-Z a-z 0-9 _ . -`
    );
  }
  return { maxBatch, bufferSize };
}
