/**
 * Client side of TLS and tokens: credentials and a bearer-token interceptor for the CLI,
 * tests and benchmarks (any gRPC client does the same with its own library).
 */
import { readFileSync } from 'node:fs';
import type { ChannelCredentials, ClientOptions, Interceptor } from '@grpc/grpc-js';
import { credentials, InterceptingCall } from '@grpc/grpc-js';
import type { ClientInit } from './client';

/** Adds `authorization: Bearer <token>` to every call (works on plaintext and TLS channels). */
export function bearerInterceptor(token: string): Interceptor {
  return (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set('authorization', `Bearer ${token}`);
        next(metadata, listener);
      },
    });
}

export interface ClientSecurityInit {
  /** CA bundle to verify the node's certificate: TLS when set. */
  caFile?: string;
  /** Client certificate and key (mTLS). */
  certFile?: string;
  keyFile?: string;
  /** Bearer token. */
  token?: string;
  /** Name to verify in the node's certificate when it differs from the address host. */
  serverName?: string;
}

/** Channel credentials and options for a node with TLS and/or tokens. */
export function clientSecurity(init: ClientSecurityInit): ClientInit {
  let creds: ChannelCredentials = credentials.createInsecure();
  const options: ClientOptions = {};
  if (init.caFile || init.certFile) {
    if ((init.certFile === undefined) !== (init.keyFile === undefined)) {
      throw new Error('a client certificate needs both --tls-cert-file and --tls-key-file');
    }
    creds = credentials.createSsl(
      init.caFile ? readFileSync(init.caFile) : null,
      init.keyFile ? readFileSync(init.keyFile) : null,
      init.certFile ? readFileSync(init.certFile) : null
    );
    if (init.serverName) options['grpc.ssl_target_name_override'] = init.serverName;
  }
  if (init.token) options.interceptors = [bearerInterceptor(init.token)];
  return { credentials: creds, options };
}
