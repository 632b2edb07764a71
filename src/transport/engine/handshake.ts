/**
 * The handshake half of a connection (one round trip) and the address validation that
 * goes with it.
 *
 * The client sends INITIAL (MAC'd with the cluster secret) and repeats it with backoff;
 * the server answers HANDSHAKE (MAC'd, bound to the client's nonce), again whenever the
 * INITIAL is repeated; both derive AEAD keys with HKDF. Until the client proves it has the
 * keys, the server sends at most AMPLIFICATION_FACTOR times what it received
 * (RFC 9000 §8.1). No I/O and no clock: callers pass `now` and send what is returned.
 */
import {
  AMPLIFICATION_FACTOR,
  HANDSHAKE_INITIAL_TIMEOUT_MS,
  INITIAL_PADDED_SIZE,
  PROTOCOL_VERSION,
} from '../constants';
import {
  buildHandshake,
  buildInitial,
  deriveConnectionKeys,
  parseHandshake,
} from '../crypto/packet-protection';
import type { ConnectionKeys, InitialInfo } from '../crypto/packet-protection';
import type { TransportParams } from '../wire';
import type { EngineInit } from './types';

const MAX_HANDSHAKE_BACKOFF_MS = 2000;

/** What an accepted HANDSHAKE gives the client. */
export interface HandshakeAccepted {
  serverCid: Buffer;
  params: TransportParams;
  keys: ConnectionKeys;
}

export class Handshake {
  /** The client's INITIAL until the handshake completes. */
  private initialPacket: Buffer | null = null;
  /** The server's HANDSHAKE until the client is validated. */
  private handshakePacket: Buffer | null = null;
  /** Client: when the INITIAL goes out (again). */
  deadline = Infinity;
  private timeoutMs = HANDSHAKE_INITIAL_TIMEOUT_MS;
  private initialSentAt = -1;
  private initialSends = 0;
  /** Server: the HANDSHAKE is to be sent (first time, or the INITIAL came again). */
  resendHandshake = false;
  /** The peer's address is validated (always, for a client). */
  validated: boolean;
  private unvalidatedBytesReceived = 0;
  private unvalidatedBytesSent = 0;

  private constructor(validated: boolean) {
    this.validated = validated;
  }

  /** A client's handshake: its INITIAL goes out at `now`. */
  static client(init: EngineInit, clientNonce: Buffer, now: number): Handshake {
    const h = new Handshake(true);
    h.initialPacket = buildInitial(
      init.clusterKeys,
      {
        version: PROTOCOL_VERSION,
        clientCid: init.localCid,
        clientNonce,
        params: init.params,
      },
      Math.min(INITIAL_PADDED_SIZE, init.params.maxDatagramSize)
    );
    h.deadline = now;
    return h;
  }

  /** A server's handshake for an authenticated INITIAL of `initialBytes` bytes. */
  static server(
    init: EngineInit,
    initial: InitialInfo,
    initialBytes: number,
    serverNonce: Buffer
  ): { handshake: Handshake; keys: ConnectionKeys } {
    const h = new Handshake(false);
    const keys = deriveConnectionKeys(
      init.clusterKeys.secret,
      init.aead,
      init.aeadBackend,
      false,
      initial.clientCid,
      init.localCid,
      initial.clientNonce,
      serverNonce
    );
    h.handshakePacket = buildHandshake(
      init.clusterKeys,
      {
        version: PROTOCOL_VERSION,
        clientCid: initial.clientCid,
        serverCid: init.localCid,
        serverNonce,
        params: init.params,
      },
      initial.clientNonce
    );
    h.unvalidatedBytesReceived = initialBytes;
    h.resendHandshake = true;
    return { handshake: h, keys };
  }

  /** Counts a received datagram against the amplification limit. */
  onReceived(bytes: number): void {
    if (!this.validated) this.unvalidatedBytesReceived += bytes;
  }

  /** Whether `bytes` more may be sent now; counts them while the peer is unvalidated. */
  admit(bytes: number): boolean {
    if (this.validated) return true;
    if (this.unvalidatedBytesSent + bytes > AMPLIFICATION_FACTOR * this.unvalidatedBytesReceived) {
      return false;
    }
    this.unvalidatedBytesSent += bytes;
    return true;
  }

  /** Bytes that may still be sent before validation (Infinity once validated). */
  budget(): number {
    if (this.validated) return Infinity;
    return AMPLIFICATION_FACTOR * this.unvalidatedBytesReceived - this.unvalidatedBytesSent;
  }

  /** The client proved it has the keys: the HANDSHAKE is no longer needed. */
  onValidated(): void {
    this.validated = true;
    this.handshakePacket = null;
    this.resendHandshake = false;
  }

  /** Client: the INITIAL to send at `now` (null when not due); backs off the next one. */
  initialDue(now: number): Buffer | null {
    if (now < this.deadline || !this.initialPacket) return null;
    if (this.initialSends === 0) this.initialSentAt = now;
    this.initialSends++;
    this.deadline = now + this.timeoutMs;
    this.timeoutMs = Math.min(this.timeoutMs * 2, MAX_HANDSHAKE_BACKOFF_MS);
    return this.initialPacket;
  }

  /** Server: the HANDSHAKE to send now, if one is pending. */
  takeHandshakeResend(): Buffer | null {
    if (!this.resendHandshake || !this.handshakePacket) return null;
    this.resendHandshake = false;
    return this.handshakePacket;
  }

  /**
   * Client: checks a HANDSHAKE datagram and derives the keys, or says why it is dropped.
   * The caller completes the handshake with `complete`.
   */
  accept(
    init: EngineInit,
    d: Buffer,
    clientNonce: Buffer
  ): HandshakeAccepted | 'malformed' | 'bad_auth' | 'version' {
    const hs = parseHandshake(init.clusterKeys, d, clientNonce);
    if (hs === 'malformed' || hs === 'bad_auth') return hs;
    if (hs.version !== PROTOCOL_VERSION || !hs.clientCid.equals(init.localCid)) return 'version';
    const keys = deriveConnectionKeys(
      init.clusterKeys.secret,
      init.aead,
      init.aeadBackend,
      true,
      init.localCid,
      hs.serverCid,
      clientNonce,
      hs.serverNonce
    );
    return { serverCid: hs.serverCid, params: hs.params, keys };
  }

  /**
   * Client: the handshake is done at `now`. Returns the RTT sample it gives (Karn: only if
   * the INITIAL went out once), or -1.
   */
  complete(now: number): number {
    const sample = this.initialSends === 1 ? now - this.initialSentAt : -1;
    this.deadline = Infinity;
    this.initialPacket = null;
    return sample;
  }
}
