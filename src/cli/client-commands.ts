/**
 * Client commands of the CLI. Each talks to one node over gRPC and prints results on
 * stdout, one JSON line per proto message in the proto3 JSON mapping (output.ts), errors
 * on stderr; exit codes in exit-codes.ts.
 */
import { readFileSync } from 'node:fs';
import type { Client, ClientReadableStream, Metadata, ServiceError } from '@grpc/grpc-js';
import { InvalidArgumentError } from '../common';
import { clientSecurity } from '../api/auth-client';
import type { ClientInit } from '../api/client';
import { createClients } from '../api/client';
import type { DeliveryBatch, RequestResponse, SendResponse, WirePeerInfo } from '../api/proto';
import { EXIT } from './exit-codes';
import { jsonLine, writeRaw } from './output';

type Opts = Record<string, unknown>;

/** TLS and token options (main.ts securityOptions) as client credentials. */
function security(opts: Opts): ClientInit {
  const str = (v: unknown): string | undefined => (v === undefined ? undefined : String(v));
  return clientSecurity({
    caFile: str(opts.tlsCaFile),
    certFile: str(opts.tlsCertFile),
    keyFile: str(opts.tlsKeyFile),
    serverName: str(opts.tlsServerName),
    token: str(opts.token),
  });
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

function printError(err: ServiceError): void {
  console.error(`meshwire: ${err.details || err.message}`);
}

/** --text: payloads as UTF-8 text where valid. */
function payloadOpts(opts: Opts): { text: boolean } {
  return { text: opts.text === true };
}

export async function sendCommand(topic: string, payload: string, opts: Opts): Promise<void> {
  const { messenger, close } = createClients(String(opts.server), security(opts));
  try {
    const count = positiveInt(opts.count, '--count') ?? 1;
    const body = readPayload(payload);
    const headers = parseHeaders(opts.header);
    for (let i = 0; i < count; i++) {
      const res = await unary<SendResponse>(messenger, 'Send', {
        target: target(opts),
        message: { topic, payload: body, headers },
        ack: String(opts.ack).toUpperCase(),
      });
      console.log(jsonLine('SendResponse', res, undefined));
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
  const { messenger, close } = createClients(String(opts.server), security(opts));
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
  const { messenger, close } = createClients(String(opts.server), security(opts));
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

export async function replyCommand(pattern: string, payload: string, opts: Opts): Promise<void> {
  const { messenger, close } = createClients(String(opts.server), security(opts));
  const limit = positiveInt(opts.count, '--count');
  let answered = 0;
  const fixed = Buffer.from(payload, 'utf8');
  await new Promise<void>((resolve, reject) => {
    const call = (
      messenger as unknown as { Subscribe(req: unknown): ClientReadableStream<DeliveryBatch> }
    ).Subscribe({
      topics: [pattern],
      queueGroup: opts.queueGroup ?? '',
      maxBatch: 64,
    });
    announceReady(call, [pattern]);
    call.on('data', (batch: DeliveryBatch) => {
      for (const d of batch.deliveries) {
        if (!d.replyTo) continue;
        const reply = {
          topic: '',
          payload: opts.echo ? d.message.payload : fixed,
          headers: d.message.headers,
        };
        unary(messenger, 'Respond', { replyTo: d.replyTo, message: reply }).then(
          () => {
            answered++;
            if (limit !== undefined && answered >= limit) {
              call.cancel();
              resolve();
            }
          },
          (err: ServiceError) => printError(err)
        );
      }
    });
    call.on('error', (err: ServiceError) => (err.code === 1 ? resolve() : reject(err)));
    call.on('end', () => resolve());
    process.once('SIGINT', () => {
      call.cancel();
      resolve();
    });
  }).finally(close);
}

export async function peersList(opts: Opts): Promise<void> {
  const { peers, close } = createClients(String(opts.server), security(opts));
  try {
    const res = await unary<{ peers: WirePeerInfo[] }>(peers, 'ListPeers', {});
    for (const p of res.peers) console.log(jsonLine('PeerInfo', p, undefined));
  } finally {
    close();
  }
}

export async function peersPut(id: string, addresses: string[], opts: Opts): Promise<void> {
  const { peers, close } = createClients(String(opts.server), security(opts));
  try {
    const res = await unary<{ peer: WirePeerInfo }>(peers, 'PutPeer', { id, addresses });
    console.log(jsonLine('PeerInfo', res.peer, undefined));
  } finally {
    close();
  }
}

export async function peersDelete(id: string, opts: Opts): Promise<void> {
  const { peers, close } = createClients(String(opts.server), security(opts));
  try {
    await unary(peers, 'DeletePeer', { id });
    process.exitCode = EXIT.OK;
  } finally {
    close();
  }
}
