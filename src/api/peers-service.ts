/** messaging.v1.Peers handlers: the admin view of the peer directory. */
import type { handleUnaryCall, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { MeshNode } from '../node';
import type { Logger } from '../telemetry';
import type { WirePeerInfo } from './proto';
import { toServiceError } from './status';

export function peersService(node: MeshNode, log: Logger): UntypedServiceImplementation {
  const internal = (err: unknown): void => log.error({ err }, 'internal error in handler');
  const ListPeers: handleUnaryCall<unknown, { peers: WirePeerInfo[] }> = (_call, callback) => {
    try {
      callback(null, { peers: node.listPeers() });
    } catch (err) {
      callback(toServiceError(err, internal));
    }
  };
  const PutPeer: handleUnaryCall<{ id: string; addresses: string[] }, { peer: WirePeerInfo }> = (
    call,
    callback
  ) => {
    try {
      const peer = node.putPeer(call.request.id, call.request.addresses);
      log.info({ peer_id: peer.id, addresses: peer.addresses }, 'peer put through the API');
      callback(null, { peer });
    } catch (err) {
      callback(toServiceError(err, internal));
    }
  };
  const DeletePeer: handleUnaryCall<{ id: string }, Record<string, never>> = (call, callback) => {
    try {
      node.deletePeer(call.request.id);
      log.info({ peer_id: call.request.id }, 'peer deleted through the API');
      callback(null, {});
    } catch (err) {
      callback(toServiceError(err, internal));
    }
  };
  return { ListPeers, PutPeer, DeletePeer };
}
