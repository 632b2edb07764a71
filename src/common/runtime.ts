/**
 * Process-wide V8 tuning for meshwire's allocation pattern (many short-lived Buffers:
 * one per datagram, per cipher call, per gRPC frame).
 *
 * V8 frees the memory behind dead ArrayBuffers on a background thread by default. With
 * one free per Buffer, that thread and the main thread contend on the malloc arena lock;
 * on virtual machines every contended lock is a futex round trip through the hypervisor.
 * Measured on the 2-core VM of docs/benchmarks.md: `new ArrayBuffer(1472)` costs 2.7 us
 * with concurrent sweeping and 0.57 us without; one ChaCha20-Poly1305 packet seal
 * 10.3 us against 4.1 us. Sweeping on the main thread (inside the GC pause it already
 * takes) is the cheaper trade for us.
 *
 * The flag is read by V8 at every sweep, so setting it at start-up takes effect. Set
 * MESHWIRE_V8_TUNING=off to keep V8's defaults (for A/B measurements).
 */
import { setFlagsFromString } from 'node:v8';

/** V8 flags meshwire processes run with (also passed to child benchmark processes). */
export const V8_FLAGS: readonly string[] = ['--no-concurrent-array-buffer-sweeping'];

let applied = false;

/** The flags to run with: V8_FLAGS, or none when MESHWIRE_V8_TUNING=off. */
export function runtimeFlags(env: NodeJS.ProcessEnv = process.env): string[] {
  return env.MESHWIRE_V8_TUNING === 'off' ? [] : [...V8_FLAGS];
}

/** Applies runtimeFlags() once per process. Returns whether any flag is in effect. */
export function tuneRuntime(env: NodeJS.ProcessEnv = process.env): boolean {
  const flags = runtimeFlags(env);
  if (!applied) {
    for (const flag of flags) setFlagsFromString(flag);
    applied = true;
  }
  return flags.length > 0;
}
