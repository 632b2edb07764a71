// Original file: proto/messaging/v1/messaging.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { DeletePeerRequest as _messaging_v1_DeletePeerRequest, DeletePeerRequest__Output as _messaging_v1_DeletePeerRequest__Output } from '../../messaging/v1/DeletePeerRequest';
import type { DeletePeerResponse as _messaging_v1_DeletePeerResponse, DeletePeerResponse__Output as _messaging_v1_DeletePeerResponse__Output } from '../../messaging/v1/DeletePeerResponse';
import type { ListPeersRequest as _messaging_v1_ListPeersRequest, ListPeersRequest__Output as _messaging_v1_ListPeersRequest__Output } from '../../messaging/v1/ListPeersRequest';
import type { ListPeersResponse as _messaging_v1_ListPeersResponse, ListPeersResponse__Output as _messaging_v1_ListPeersResponse__Output } from '../../messaging/v1/ListPeersResponse';
import type { PutPeerRequest as _messaging_v1_PutPeerRequest, PutPeerRequest__Output as _messaging_v1_PutPeerRequest__Output } from '../../messaging/v1/PutPeerRequest';
import type { PutPeerResponse as _messaging_v1_PutPeerResponse, PutPeerResponse__Output as _messaging_v1_PutPeerResponse__Output } from '../../messaging/v1/PutPeerResponse';

export interface PeersClient extends grpc.Client {
  DeletePeer(argument: _messaging_v1_DeletePeerRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_messaging_v1_DeletePeerResponse__Output>): grpc.ClientUnaryCall;
  DeletePeer(argument: _messaging_v1_DeletePeerRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_messaging_v1_DeletePeerResponse__Output>): grpc.ClientUnaryCall;
  DeletePeer(argument: _messaging_v1_DeletePeerRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_messaging_v1_DeletePeerResponse__Output>): grpc.ClientUnaryCall;
  DeletePeer(argument: _messaging_v1_DeletePeerRequest, callback: grpc.requestCallback<_messaging_v1_DeletePeerResponse__Output>): grpc.ClientUnaryCall;
  deletePeer(argument: _messaging_v1_DeletePeerRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_messaging_v1_DeletePeerResponse__Output>): grpc.ClientUnaryCall;
  deletePeer(argument: _messaging_v1_DeletePeerRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_messaging_v1_DeletePeerResponse__Output>): grpc.ClientUnaryCall;
  deletePeer(argument: _messaging_v1_DeletePeerRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_messaging_v1_DeletePeerResponse__Output>): grpc.ClientUnaryCall;
  deletePeer(argument: _messaging_v1_DeletePeerRequest, callback: grpc.requestCallback<_messaging_v1_DeletePeerResponse__Output>): grpc.ClientUnaryCall;
  
  ListPeers(argument: _messaging_v1_ListPeersRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_messaging_v1_ListPeersResponse__Output>): grpc.ClientUnaryCall;
  ListPeers(argument: _messaging_v1_ListPeersRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_messaging_v1_ListPeersResponse__Output>): grpc.ClientUnaryCall;
  ListPeers(argument: _messaging_v1_ListPeersRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_messaging_v1_ListPeersResponse__Output>): grpc.ClientUnaryCall;
  ListPeers(argument: _messaging_v1_ListPeersRequest, callback: grpc.requestCallback<_messaging_v1_ListPeersResponse__Output>): grpc.ClientUnaryCall;
  listPeers(argument: _messaging_v1_ListPeersRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_messaging_v1_ListPeersResponse__Output>): grpc.ClientUnaryCall;
  listPeers(argument: _messaging_v1_ListPeersRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_messaging_v1_ListPeersResponse__Output>): grpc.ClientUnaryCall;
  listPeers(argument: _messaging_v1_ListPeersRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_messaging_v1_ListPeersResponse__Output>): grpc.ClientUnaryCall;
  listPeers(argument: _messaging_v1_ListPeersRequest, callback: grpc.requestCallback<_messaging_v1_ListPeersResponse__Output>): grpc.ClientUnaryCall;
  
  PutPeer(argument: _messaging_v1_PutPeerRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_messaging_v1_PutPeerResponse__Output>): grpc.ClientUnaryCall;
  PutPeer(argument: _messaging_v1_PutPeerRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_messaging_v1_PutPeerResponse__Output>): grpc.ClientUnaryCall;
  PutPeer(argument: _messaging_v1_PutPeerRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_messaging_v1_PutPeerResponse__Output>): grpc.ClientUnaryCall;
  PutPeer(argument: _messaging_v1_PutPeerRequest, callback: grpc.requestCallback<_messaging_v1_PutPeerResponse__Output>): grpc.ClientUnaryCall;
  putPeer(argument: _messaging_v1_PutPeerRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_messaging_v1_PutPeerResponse__Output>): grpc.ClientUnaryCall;
  putPeer(argument: _messaging_v1_PutPeerRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_messaging_v1_PutPeerResponse__Output>): grpc.ClientUnaryCall;
  putPeer(argument: _messaging_v1_PutPeerRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_messaging_v1_PutPeerResponse__Output>): grpc.ClientUnaryCall;
  putPeer(argument: _messaging_v1_PutPeerRequest, callback: grpc.requestCallback<_messaging_v1_PutPeerResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface PeersHandlers extends grpc.UntypedServiceImplementation {
  DeletePeer: grpc.handleUnaryCall<_messaging_v1_DeletePeerRequest__Output, _messaging_v1_DeletePeerResponse>;
  
  ListPeers: grpc.handleUnaryCall<_messaging_v1_ListPeersRequest__Output, _messaging_v1_ListPeersResponse>;
  
  PutPeer: grpc.handleUnaryCall<_messaging_v1_PutPeerRequest__Output, _messaging_v1_PutPeerResponse>;
  
}

export interface PeersDefinition extends grpc.ServiceDefinition {
  DeletePeer: MethodDefinition<_messaging_v1_DeletePeerRequest, _messaging_v1_DeletePeerResponse, _messaging_v1_DeletePeerRequest__Output, _messaging_v1_DeletePeerResponse__Output>
  ListPeers: MethodDefinition<_messaging_v1_ListPeersRequest, _messaging_v1_ListPeersResponse, _messaging_v1_ListPeersRequest__Output, _messaging_v1_ListPeersResponse__Output>
  PutPeer: MethodDefinition<_messaging_v1_PutPeerRequest, _messaging_v1_PutPeerResponse, _messaging_v1_PutPeerRequest__Output, _messaging_v1_PutPeerResponse__Output>
}
