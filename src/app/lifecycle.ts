/**
 * Starting and stopping a node's components, the one place the order is written.
 *
 * Start: in assembly order (datagram socket, peer transport, static peers, cluster, DNS
 * resolver, node, auth and limits, gRPC server, /metrics). A component that fails
 * releases its own part and rejects; the ones already started are stopped in reverse
 * (stop() only: nothing is in flight yet), so a failed start leaves no port bound.
 *
 * Stop (the drain order), in two phases, each in reverse assembly order:
 * 1. beforeStop(), all begun at once: the gRPC server's health turns NOT_SERVING and the
 *    node refuses new work (both before shutdown() returns its promise); the node then
 *    lets in-flight Sends and Requests finish up to drainTimeoutMs, withdraws its
 *    interest and lets its cluster's senders flush (links close with FIN), then fails
 *    what is left and closes every subscription.
 * 2. stop(): /metrics closes; the gRPC server ends the subscriber streams and closes
 *    (forcibly after 2 s); the tokens and TLS watchers stop; the DNS resolver stops; the
 *    cluster closes; the peer transport and its datagram socket close.
 */
import type { Component } from '../common';

/** Starts `components` in order; on a failure stops the started ones in reverse and rethrows. */
export async function startComponents(components: readonly Component[]): Promise<void> {
  const started: Component[] = [];
  for (const c of components) {
    try {
      await c.start();
    } catch (err) {
      for (const s of started.reverse()) await s.stop().catch(() => undefined);
      throw err;
    }
    started.push(c);
  }
}

/**
 * The drain order: every beforeStop() called in reverse, in the same tick (so work is
 * refused everywhere from the moment stop begins: the node is 'draining' when this
 * returns its promise), and awaited together; then every stop() in reverse, one by one.
 */
export async function stopComponents(components: readonly Component[]): Promise<void> {
  const reversed = [...components].reverse();
  await Promise.all(reversed.map(c => c.beforeStop?.()));
  for (const c of reversed) await c.stop().catch(() => undefined);
}
