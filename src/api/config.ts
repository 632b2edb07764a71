/** The configuration keys the gRPC API reads (the app's NodeConfig has them all). */
import type { HostPort } from '../common';
import type { LimitsInit } from './limits';

export interface ApiConfig extends LimitsInit {
  nodeId: string;
  /** gRPC API listen address. */
  grpcListen: HostPort;
  /** Prometheus /metrics listen address. */
  metricsListen: HostPort;
  /** Largest payload accepted (gRPC message limits are this plus framing). */
  maxMessageBytes: number;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  tlsClientCaFile?: string;
  authTokensFile?: string;
}
