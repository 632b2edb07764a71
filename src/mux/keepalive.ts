/**
 * Keepalive (MConnection-style ping/pong, refined): a PING goes out `pingIntervalMs` after the
 * last exchange; the connection closes only if nothing at all (no pong, no frame) has
 * come from the peer within `pongTimeoutMs` of the ping. Any frame proves the peer
 * alive: a ping queued behind megabytes inside a slow transport must not kill a
 * connection whose responses keep arriving. Timers come from the injected clock.
 */
import type { Clock, Timer } from '../common';

/** What the keepalive needs from its mux. */
export interface KeepaliveHost {
  isClosed(): boolean;
  /** Queues a PING with `nonce` (counted by the mux). */
  sendPing(nonce: number): void;
  /** Frames received so far. */
  framesIn(): number;
  /** Nothing came from the peer within pongTimeoutMs of a ping. */
  onUnresponsive(pongTimeoutMs: number): void;
}

export class Keepalive {
  private pingTimer?: Timer;
  private pongTimer?: Timer;
  private pingNonce = 0;

  constructor(
    private readonly clock: Clock,
    private readonly pingIntervalMs: number,
    private readonly pongTimeoutMs: number,
    private readonly host: KeepaliveHost
  ) {}

  /** Starts pinging (unless the interval is 0: keepalive off). */
  start(): void {
    if (this.pingIntervalMs > 0) this.schedulePing();
  }

  /** A PONG arrived; true when it answers the outstanding PING. */
  onPong(nonce: number): boolean {
    if (!this.pongTimer || nonce !== this.pingNonce) return false;
    this.pongTimer.cancel();
    this.pongTimer = undefined;
    this.schedulePing();
    return true;
  }

  stop(): void {
    this.pingTimer?.cancel();
    this.pongTimer?.cancel();
    this.pingTimer = this.pongTimer = undefined;
  }

  private schedulePing(): void {
    this.pingTimer?.cancel();
    this.pingTimer = this.clock.setTimer(this.pingIntervalMs, () => {
      this.pingTimer = undefined;
      if (this.host.isClosed()) return;
      this.pingNonce = (this.pingNonce + 1) >>> 0;
      this.host.sendPing(this.pingNonce);
      const framesAtPing = this.host.framesIn();
      this.pongTimer = this.clock.setTimer(this.pongTimeoutMs, () => {
        this.pongTimer = undefined;
        if (this.host.framesIn() > framesAtPing) {
          this.schedulePing(); // heard from the peer meanwhile: alive
          return;
        }
        this.host.onUnresponsive(this.pongTimeoutMs);
      });
    });
  }
}
