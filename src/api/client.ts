/**
 * gRPC clients for a meshwire node (used by the CLI, tests and benchmarks). Any gRPC
 * client in any language works the same way from proto/; this is only a convenience.
 */
import type { ChannelCredentials, Client, ClientOptions } from '@grpc/grpc-js';
import { credentials } from '@grpc/grpc-js';
import { serviceConstructors } from './proto';

export interface MeshwireClients {
  messenger: Client;
  peers: Client;
  close(): void;
}

export interface ClientInit {
  /** @default insecure */
  credentials?: ChannelCredentials;
  options?: ClientOptions;
}

/** Opens Messenger and Peers clients on one channel to `address` ("host:port"). */
export function createClients(address: string, init: ClientInit = {}): MeshwireClients {
  const { Messenger, Peers } = serviceConstructors();
  const creds = init.credentials ?? credentials.createInsecure();
  const options: ClientOptions = {
    'grpc.max_receive_message_length': 80 * 1024 * 1024,
    'grpc.max_send_message_length': 80 * 1024 * 1024,
    ...init.options,
  };
  const messenger = new Messenger(address, creds, options);
  // Share the channel so both services use one HTTP/2 connection.
  const peers = new Peers(address, creds, { ...options, channelOverride: messenger.getChannel() });
  return {
    messenger,
    peers,
    close: () => {
      messenger.close();
      peers.close();
    },
  };
}
