/**
 * The request metadata limit, and a prompt answer above it instead of a hung call.
 *
 * Two limits apply to a call's headers (its gRPC metadata), both in Node's HTTP/2 layer,
 * below grpc-js (which has no metadata-size option on servers):
 *
 * 1. The whole header list: we advertise SETTINGS_MAX_HEADER_LIST_SIZE =
 *    MAX_METADATA_BYTES and Node enforces it, resetting such a stream with
 *    ENHANCE_YOUR_CALM, which gRPC clients report as RESOURCE_EXHAUSTED. The connection
 *    stays up.
 * 2. One header field whose encoded length is above 64 KiB: Node's HTTP/2 library
 *    (nghttp2, limit NGHTTP2_HD_MAX_NV) cannot decode it, which HTTP/2 makes a
 *    connection error. Node sends GOAWAY(COMPRESSION_ERROR) naming the stream as
 *    processed, then neither closes the connection nor tells JavaScript, so the client
 *    waits for an answer that never comes (until its deadline, or forever). A stream
 *    nghttp2 counted (session.state.lastProcStreamID) but never handed over, on a session
 *    that no longer answers a PING, is that case: we reset the stream with
 *    ENHANCE_YOUR_CALM ourselves (RESOURCE_EXHAUSTED at the client) and close the
 *    connection. Other calls on that connection fail with UNAVAILABLE; that is HTTP/2's
 *    rule for connection errors, which no server can change.
 */
import type { Http2Server, ServerHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { Server } from '@grpc/grpc-js';

/** Largest header list (all metadata of a call, HTTP/2 pseudo-headers included). */
export const MAX_METADATA_BYTES = 64 * 1024;

/** How often sessions are checked for a stream Node swallowed. */
const CHECK_INTERVAL_MS = 200;
/** How long a live session takes to answer a PING, at most (generous: a loaded machine or a
 * client busy writing a large header block answers late, and a false alarm closes a
 * healthy connection). */
const PING_TIMEOUT_MS = 3000;
const ENHANCE_YOUR_CALM = 0x0b;
/** Longest wait for a session that keeps receiving bytes but never answers the PING. */
const MAX_PROBE_MS = 15_000;

type GrpcServerInternals = {
  commonServerOptions?: { settings?: Record<string, unknown> };
  http2Servers?: Map<Http2Server, unknown>;
};

/**
 * Makes the server advertise and enforce MAX_METADATA_BYTES. grpc-js passes its private
 * `commonServerOptions` to http2.createServer at bind time, so call this before
 * bindAsync; if the field ever disappears, the limit stays Node's default.
 */
export function limitHeaderList(server: Server): void {
  const internals = server as unknown as GrpcServerInternals;
  const opts = internals.commonServerOptions;
  if (!opts) return;
  opts.settings = { ...opts.settings, maxHeaderListSize: MAX_METADATA_BYTES };
}

/** The raw socket under a session (Node hides it behind a proxy without write()). */
function rawSocket(session: ServerHttp2Session): Socket | undefined {
  for (const sym of Object.getOwnPropertySymbols(session)) {
    if (sym.description !== 'socket') continue;
    const s = (session as unknown as Record<symbol, unknown>)[sym];
    if (s && typeof (s as Socket).write === 'function') return s as Socket;
  }
  return undefined;
}

function rstStreamFrame(streamId: number, code: number): Buffer {
  const f = Buffer.alloc(13);
  f.writeUIntBE(4, 0, 3); // payload length
  f[3] = 0x03; // RST_STREAM
  f[4] = 0; // flags
  f.writeUInt32BE(streamId & 0x7fffffff, 5);
  f.writeUInt32BE(code, 9);
  return f;
}

interface Watched {
  lastSeen: number;
  probing: boolean;
}

/**
 * Watches every session of the server for the swallowed-stream case above. Call after
 * bindAsync. Returns a function that stops watching.
 */
export function closeDeadSessions(server: Server): () => void {
  const h2 = (server as unknown as GrpcServerInternals).http2Servers;
  if (!(h2 instanceof Map)) return () => undefined;
  const sessions = new Map<ServerHttp2Session, Watched>();
  for (const s of h2.keys()) {
    s.on('session', (session: ServerHttp2Session) => {
      const w: Watched = { lastSeen: 0, probing: false };
      sessions.set(session, w);
      session.on('stream', stream => {
        if (stream.id !== undefined && stream.id > w.lastSeen) w.lastSeen = stream.id;
      });
      session.once('close', () => sessions.delete(session));
    });
  }
  const check = (session: ServerHttp2Session, w: Watched): void => {
    if (w.probing || session.destroyed || session.closed) return;
    let processed: number;
    try {
      processed = session.state.lastProcStreamID ?? 0;
    } catch {
      return; // closing as we look
    }
    if (processed <= w.lastSeen) return;
    // A stream nghttp2 processed without handing it over: refused headers (the session
    // is fine and answers the PING) or a compression error (it never will).
    w.probing = true;
    let answered = false;
    const socket = rawSocket(session);
    let bytesRead = socket?.bytesRead ?? 0;
    let waited = 0;
    const judge = (): void => {
      // Timers run before I/O: after a busy event loop the PING ack may be waiting
      // unread, so look again once pending reads have run.
      setImmediate(() => {
        // Answered, or the stream arrived after all (a header block still coming in).
        if (answered || session.destroyed || w.lastSeen >= processed) {
          w.probing = false;
          return;
        }
        // Still receiving: a client in the middle of a large header block (refused, or
        // still arriving) cannot send a PING ack before the block ends. Wait for it.
        const now = socket?.bytesRead ?? 0;
        waited += PING_TIMEOUT_MS;
        if (now > bytesRead && waited < MAX_PROBE_MS) {
          bytesRead = now;
          timer = setTimeout(judge, PING_TIMEOUT_MS);
          timer.unref();
          return;
        }
        if (socket && !socket.destroyed) {
          socket.write(rstStreamFrame(processed, ENHANCE_YOUR_CALM));
        }
        session.destroy();
      });
    };
    let timer = setTimeout(judge, PING_TIMEOUT_MS);
    timer.unref();
    const sent = session.ping(err => {
      if (err) return; // destroyed meanwhile: the timer has run or will find nothing
      answered = true;
      clearTimeout(timer);
      w.lastSeen = Math.max(w.lastSeen, processed);
      w.probing = false;
    });
    if (!sent) {
      clearTimeout(timer);
      w.probing = false;
    }
  };
  const interval = setInterval(() => {
    for (const [session, w] of sessions) check(session, w);
  }, CHECK_INTERVAL_MS);
  interval.unref();
  return () => {
    clearInterval(interval);
    sessions.clear();
  };
}
