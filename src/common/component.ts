/**
 * The lifecycle every part of a running node shares, in the style of js-libp2p's
 * components: a name (for logs and errors), start() and stop(). src/app/lifecycle.ts
 * starts them in order and stops them in reverse, in two phases: every beforeStop()
 * (stop accepting new work, let in-flight work finish), then every stop() (release).
 */
export interface Component {
  /** What it is, e.g. "grpc server", for logs and errors. */
  readonly name: string;
  /** Binds or opens what it needs; rejects (after releasing its own part) when it cannot. */
  start(): Promise<void>;
  /** First phase of a stop: refuse new work, let in-flight work finish. Idempotent. */
  beforeStop?(): Promise<void>;
  /** Releases what start() opened. Idempotent; also called without beforeStop() to roll back a failed start. */
  stop(): Promise<void>;
}
