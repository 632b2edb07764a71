/**
 * Pure reassembly of channel messages from DATA fragments (as MConnection's recvPacketMsg).
 * A message growing past its channel's maxMessageBytes, or a fragment for a channel
 * that was not declared, throws ProtocolError.
 */
import { ProtocolError } from '../common';
import type { ResolvedChannel } from './channel';

interface Partial {
  readonly max: number;
  parts: Buffer[];
  bytes: number;
}

export class Reassembler {
  private readonly partials = new Map<number, Partial>();

  constructor(channels: readonly ResolvedChannel[]) {
    for (const c of channels)
      this.partials.set(c.id, { max: c.maxMessageBytes, parts: [], bytes: 0 });
  }

  /** Adds one fragment; returns the whole message when `eof` completes it. */
  push(channelId: number, payload: Buffer, eof: boolean): Buffer | undefined {
    const p = this.partials.get(channelId);
    if (!p) throw new ProtocolError(`DATA frame on undeclared channel ${channelId}`);
    const bytes = p.bytes + payload.length;
    if (bytes > p.max) {
      throw new ProtocolError(
        `message on channel ${channelId} grew to ${bytes} bytes, above its limit of ${p.max}`
      );
    }
    if (!eof) {
      p.parts.push(payload);
      p.bytes = bytes;
      return undefined;
    }
    if (p.parts.length === 0) return payload;
    p.parts.push(payload);
    const msg = Buffer.concat(p.parts, bytes);
    p.parts = [];
    p.bytes = 0;
    return msg;
  }

  /** Bytes held in unfinished messages, over all channels. */
  get bufferedBytes(): number {
    let n = 0;
    for (const p of this.partials.values()) n += p.bytes;
    return n;
  }
}
