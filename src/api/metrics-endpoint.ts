/**
 * The /metrics endpoint of a node: the node's counters, calls by method and status, and
 * the API's limits and refusals, read at scrape time.
 */
import type { Component } from '../common';
import type { MeshNode } from '../node';
import type { MetricsServer } from '../telemetry';
import { startMetrics } from '../telemetry';
import type { ApiAccess } from './access';
import { registerGuardMetrics } from './auth-guard';
import type { ApiConfig } from './config';
import { registerLimitMetrics } from './limits';
import { registerNodeMetrics } from './node-metrics';
import type { RpcMetrics } from './rpc-metrics';
import { listenError } from './server';

export interface MetricsEndpointInit {
  config: Pick<ApiConfig, 'nodeId' | 'metricsListen'>;
  node: MeshNode;
  access: ApiAccess;
  /** The gRPC server's call counters (GrpcApi.rpcMetrics). */
  rpcMetrics: () => RpcMetrics | undefined;
}

export class MetricsEndpoint implements Component {
  readonly name = 'metrics endpoint';
  private server: MetricsServer | undefined;

  constructor(private readonly init: MetricsEndpointInit) {}

  /** The bound port (undefined before start()). */
  get port(): number | undefined {
    return this.server?.port;
  }

  /** Binds metricsListen; rejects with a ListenError naming it. */
  async start(): Promise<void> {
    const { config: cfg, node, access } = this.init;
    try {
      this.server = await startMetrics(cfg.metricsListen.host, cfg.metricsListen.port, {
        nodeId: cfg.nodeId,
      });
    } catch (err) {
      throw listenError('metricsListen', cfg.metricsListen, err);
    }
    registerNodeMetrics(this.server.meter, node);
    this.init.rpcMetrics()?.attach(this.server.meter);
    registerLimitMetrics(this.server.meter, access.guard.limits, access.guard.budget);
    registerGuardMetrics(this.server.meter, access.guard);
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await server?.shutdown();
  }
}
