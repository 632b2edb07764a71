/**
 * Client commands of the CLI. Each talks to one node over gRPC and prints results on
 * stdout, one JSON line per proto message in the proto3 JSON mapping (output.ts), errors
 * on stderr; exit codes in exit-codes.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type {
  Client,
  ClientReadableStream,
  ClientWritableStream,
  Metadata,
  ServiceError,
} from '@grpc/grpc-js';
import { InvalidArgumentError } from '../common';
import type {
  ClientInit,
  MeshwireClients,
  DeliveryBatch,
  RequestManyResponse,
  RequestResponse,
  SendResponse,
  WirePeerInfo,
} from '../app';
import { loadClientHelpers } from '../app';
import { EXIT } from './exit-codes';
import { jsonLine, protoJson, useMessagingProto, writeRaw } from './output';

type Opts = Record<string, unknown>;

/**
 * Clients of the node at --server, with the TLS and token options (main.ts
 * securityOptions) as credentials. The gRPC helpers load here, on the command's first use.
 */
export async function connectClients(opts: Opts): Promise<MeshwireClients> {
  const { clientSecurity, createClients, protoDir, MESSAGING_PROTO } = await loadClientHelpers();
  useMessagingProto(join(protoDir(), MESSAGING_PROTO));
  const str = (v: unknown): string | undefined => (v === undefined ? undefined : String(v));
  const security: ClientInit = clientSecurity({
    caFile: str(opts.tlsCaFile),
    certFile: str(opts.tlsCertFile),
    keyFile: str(opts.tlsKeyFile),
    serverName: str(opts.tlsServerName),
    token: str(opts.token),
  });
  return createClients(String(opts.server), security);
}

function readPayload(payload: string): Buffer {
  if (payload === '-') return readFileSync(0);
  return Buffer.from(payload, 'utf8');
}

function parseHeaders(list: unknown): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const h of (list as string[] | undefined) ?? []) {
    const eq = h.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`header "${h}" is not key=value`);
    headers[h.slice(0, eq)] = h.slice(eq + 1);
  }
  return headers;
}

function positiveInt(value: unknown, what: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError(`${what} must be a positive integer, got "${String(value)}"`);
  return n;
}

function target(opts: Opts): { peerId: string } | { address: string } | null {
  if (opts.peer) return { peerId: String(opts.peer) };
  if (opts.address) return { address: String(opts.address) };
  return null;
}

/** Calls a unary method and resolves with its response. */
function unary<Res>(
  client: Client,
  method: string,
  req: unknown,
  deadlineMs = 30_000
): Promise<Res> {
  return new Promise((resolve, reject) => {
    // grpc-js generated clients expose methods by name; the shape is checked by the proto.
    const fn = (client as unknown as Record<string, (...a: unknown[]) => void>)[method].bind(
      client
    );
    fn(req, { deadline: Date.now() + deadlineMs }, (err: ServiceError | null, res: Res) =>
      err ? reject(err) : resolve(res)
    );
  });
}

/** --text: payloads as UTF-8 text where valid. */
function payloadOpts(opts: Opts): { text: boolean } {
  return { text: opts.text === true };
}

export async function sendCommand(topic: string, payload: string, opts: Opts): Promise<void> {
  const { messenger, close } = await connectClients(opts);
  try {
    const count = positiveInt(opts.count, '--count') ?? 1;
    const body = readPayload(payload);
    const headers = parseHeaders(opts.header);
    const key = opts.idempotencyKey === undefined ? '' : String(opts.idempotencyKey);
    for (let i = 0; i < count; i++) {
      const res = await unary<SendResponse>(messenger, 'Send', {
        target: target(opts),
        message: { topic, payload: body, headers },
        ack: String(opts.ack).toUpperCase(),
        idempotencyKey: key,
      });
      const printed = protoJson('SendResponse', res);
      // `duplicate` only means something with a key: without one the line stays as it was.
      if (!key) delete printed.duplicate;
      console.log(JSON.stringify(printed));
    }
  } finally {
    close();
  }
}

/**
 * Says on stderr (stdout stays data only) when the node has the subscription live, here
 * and on its connected peers (Subscribe's response headers): scripts wait for this line
 * instead of probing.
 */
function announceReady(call: ClientReadableStream<DeliveryBatch>, patterns: string[]): void {
  call.once('metadata', (md: Metadata) => {
    const id = String(md.get('meshwire-subscription-id')[0] ?? '');
    console.error(`meshwire: subscribed to ${patterns.join(' ')}${id ? ` (${id})` : ''}`);
  });
}

export async function subCommand(patterns: string[], opts: Opts): Promise<void> {
  const { messenger, close } = await connectClients(opts);
  const limit = positiveInt(opts.count, '--count');
  const maxBatch = positiveInt(opts.maxBatch, '--max-batch') ?? 64;
  let seen = 0;
  await new Promise<void>((resolve, reject) => {
    const call = (
      messenger as unknown as { Subscribe(req: unknown): ClientReadableStream<DeliveryBatch> }
    ).Subscribe({
      topics: patterns,
      queueGroup: opts.queueGroup ?? '',
      maxBatch,
    });
    announceReady(call, patterns);
    // Output is written in order; the command ends once the last write is out.
    let written: Promise<void> = Promise.resolve();
    call.on('data', (batch: DeliveryBatch) => {
      if (batch.dropped > 0)
        console.error(`meshwire: ${batch.dropped} deliveries dropped (slow consumer)`);
      for (const d of batch.deliveries) {
        if (limit !== undefined && seen >= limit) break;
        seen++;
        const payload = d.message.payload;
        const out = opts.raw
          ? payload
          : jsonLine('Delivery', d, { path: ['message'], bytes: payload }, payloadOpts(opts)) +
            '\n';
        written = written.then(() => writeRaw(typeof out === 'string' ? Buffer.from(out) : out));
      }
      if (limit !== undefined && seen >= limit) {
        call.cancel();
        void written.then(resolve, reject);
      }
    });
    call.on('error', (err: ServiceError) => {
      if (err.code === 1 /* CANCELLED by us */) resolve();
      else reject(err);
    });
    call.on('end', () => resolve());
    process.once('SIGINT', () => {
      call.cancel();
      resolve();
    });
  }).finally(close);
}

export async function requestCommand(topic: string, payload: string, opts: Opts): Promise<void> {
  if (opts.replies !== undefined || opts.stall !== undefined) {
    await requestManyCommand(topic, payload, opts);
    return;
  }
  const { messenger, close } = await connectClients(opts);
  try {
    const timeoutMs = positiveInt(opts.timeoutMs, '--timeout-ms') ?? 5000;
    const res = await unary<RequestResponse>(
      messenger,
      'Request',
      {
        target: target(opts),
        message: { topic, payload: readPayload(payload), headers: parseHeaders(opts.header) },
        timeoutMs,
      },
      timeoutMs + 1000
    );
    if (opts.raw) await writeRaw(res.reply.payload);
    else
      console.log(
        jsonLine(
          'RequestResponse',
          res,
          { path: ['reply'], bytes: res.reply.payload },
          payloadOpts(opts)
        )
      );
  } finally {
    close();
  }
}

/** --replies: a positive count, or "all" (0: as many as come, up to the node's cap). */
function repliesOption(value: unknown): number {
  if (value === undefined || value === 'all') return 0;
  return positiveInt(value, '--replies') as number;
}

/**
 * `request --replies N` / `--stall MS`: RequestMany. Prints each reply as it arrives, in
 * the output style of `request`; the command ends with the gather (status OK at the
 * count, timeout, stall, or when every responder answered).
 */
async function requestManyCommand(topic: string, payload: string, opts: Opts): Promise<void> {
  const { messenger, close } = await connectClients(opts);
  const timeoutMs = positiveInt(opts.timeoutMs, '--timeout-ms') ?? 5000;
  const request = {
    target: target(opts),
    message: { topic, payload: readPayload(payload), headers: parseHeaders(opts.header) },
    timeoutMs,
    maxReplies: repliesOption(opts.replies),
    stallMs: positiveInt(opts.stall, '--stall') ?? 0,
  };
  let written: Promise<void> = Promise.resolve();
  let count = 0;
  await new Promise<void>((resolve, reject) => {
    const call = (
      messenger as unknown as {
        RequestMany(
          req: unknown,
          options: { deadline: number }
        ): ClientReadableStream<RequestManyResponse>;
      }
    ).RequestMany(request, { deadline: Date.now() + timeoutMs + 5000 });
    call.on('data', (res: RequestManyResponse) => {
      count++;
      const out = opts.raw
        ? res.reply.payload
        : Buffer.from(
            jsonLine(
              'RequestManyResponse',
              res,
              { path: ['reply'], bytes: res.reply.payload },
              payloadOpts(opts)
            ) + '\n'
          );
      written = written.then(() => writeRaw(out));
    });
    call.on('error', reject);
    call.on('end', () => resolve());
    process.once('SIGINT', () => call.cancel());
  }).finally(close);
  await written;
  console.error(`meshwire: ${count} ${count === 1 ? 'reply' : 'replies'}`);
}

/** What the node says when a RespondStream ends (RespondStreamResponse; longs as numbers). */
interface RespondSummary {
  accepted: number;
  rejected: number;
}

/**
 * Answers every request on the pattern over one long-lived `RespondStream` (a unary
 * `Respond` per request would cost the node a whole gRPC call each). The node counts the
 * replies that reached a waiting requester (accepted) and those whose requester had given
 * up (rejected) and says so when the stream ends; rejected replies are reported on stderr.
 * `--count n`: once n replies are on the stream, it is ended; if the node accepted fewer
 * (some requesters gave up), a new stream answers the next requests until n are accepted.
 */
export async function replyCommand(pattern: string, payload: string, opts: Opts): Promise<void> {
  const { messenger, close } = await connectClients(opts);
  const limit = positiveInt(opts.count, '--count');
  const fixed = Buffer.from(payload, 'utf8');
  const api = messenger as unknown as {
    Subscribe(req: unknown): ClientReadableStream<DeliveryBatch>;
    RespondStream(
      cb: (err: ServiceError | null, res?: RespondSummary) => void
    ): ClientWritableStream<unknown>;
  };
  let accepted = 0;
  await new Promise<void>((resolve, reject) => {
    let finished = false;
    /** Set when the subscription is over or on SIGINT: the next summary ends the command. */
    let stopping: { error?: ServiceError } | undefined;
    const finish = (err?: ServiceError): void => {
      if (finished) return;
      finished = true;
      call.cancel();
      if (err) reject(err);
      else resolve();
    };
    /** The open reply stream and the replies written on it; undefined while one is ending. */
    let stream: { call: ClientWritableStream<unknown>; written: number } | undefined;
    /** Requests that came while a stream was ending (--count): answered on the next one. */
    const waiting: { replyTo: string; message: unknown }[] = [];
    const open = (): void => {
      const s = {
        written: 0,
        call: api.RespondStream((err, res) => {
          if (err) {
            // The stream itself failed (permission denied, node gone): nothing more can
            // be answered (main.ts prints the error and picks the exit code).
            finish(err);
            return;
          }
          const a = res?.accepted ?? 0;
          const r = res?.rejected ?? 0;
          accepted += a;
          if (r > 0) {
            console.error(
              `meshwire: ${r} of ${a + r} replies rejected (the requester had given up or ` +
                'the reply_to was unknown)'
            );
          }
          if (stopping || limit === undefined || accepted >= limit) {
            finish(stopping?.error);
            return;
          }
          open();
          for (const w of waiting.splice(0)) answer(w);
        }),
      };
      stream = s;
    };
    const end = (): void => {
      const s = stream;
      stream = undefined;
      s?.call.end();
    };
    const answer = (reply: { replyTo: string; message: unknown }): void => {
      const s = stream;
      if (!s || (limit !== undefined && accepted + s.written >= limit)) {
        if (limit !== undefined) waiting.push(reply);
        return;
      }
      s.written++;
      if (!s.call.write(reply)) {
        // The node reads slower than requests come: stop reading deliveries meanwhile.
        call.pause();
        s.call.once('drain', () => call.resume());
      }
      if (limit !== undefined && accepted + s.written >= limit) end();
    };
    const call = api.Subscribe({
      topics: [pattern],
      queueGroup: opts.queueGroup ?? '',
      maxBatch: 64,
    });
    announceReady(call, [pattern]);
    open();
    call.on('data', (batch: DeliveryBatch) => {
      for (const d of batch.deliveries) {
        if (!d.replyTo) continue;
        answer({
          replyTo: d.replyTo,
          message: {
            topic: '',
            payload: opts.echo ? d.message.payload : fixed,
            headers: d.message.headers,
          },
        });
      }
    });
    // The subscription is over (cancelled, or the node ended it): the replies written so
    // far are flushed by ending the stream, whose summary then finishes the command.
    const stop = (error?: ServiceError): void => {
      stopping ??= { error };
      waiting.length = 0;
      end();
    };
    call.on('error', (err: ServiceError) => {
      if (err.code !== 1 /* CANCELLED by us */) stop(err);
    });
    call.on('end', () => stop());
    process.once('SIGINT', () => stop());
  }).finally(close);
}

export async function peersList(opts: Opts): Promise<void> {
  const { peers, close } = await connectClients(opts);
  try {
    const res = await unary<{ peers: WirePeerInfo[] }>(peers, 'ListPeers', {});
    for (const p of res.peers) console.log(jsonLine('PeerInfo', p, undefined));
  } finally {
    close();
  }
}

export async function peersPut(id: string, addresses: string[], opts: Opts): Promise<void> {
  const { peers, close } = await connectClients(opts);
  try {
    const res = await unary<{ peer: WirePeerInfo }>(peers, 'PutPeer', { id, addresses });
    console.log(jsonLine('PeerInfo', res.peer, undefined));
  } finally {
    close();
  }
}

export async function peersDelete(id: string, opts: Opts): Promise<void> {
  const { peers, close } = await connectClients(opts);
  try {
    await unary(peers, 'DeletePeer', { id });
    process.exitCode = EXIT.OK;
  } finally {
    close();
  }
}
