import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { DeletePeerRequest as _messaging_v1_DeletePeerRequest, DeletePeerRequest__Output as _messaging_v1_DeletePeerRequest__Output } from './messaging/v1/DeletePeerRequest';
import type { DeletePeerResponse as _messaging_v1_DeletePeerResponse, DeletePeerResponse__Output as _messaging_v1_DeletePeerResponse__Output } from './messaging/v1/DeletePeerResponse';
import type { Delivery as _messaging_v1_Delivery, Delivery__Output as _messaging_v1_Delivery__Output } from './messaging/v1/Delivery';
import type { DeliveryBatch as _messaging_v1_DeliveryBatch, DeliveryBatch__Output as _messaging_v1_DeliveryBatch__Output } from './messaging/v1/DeliveryBatch';
import type { ListPeersRequest as _messaging_v1_ListPeersRequest, ListPeersRequest__Output as _messaging_v1_ListPeersRequest__Output } from './messaging/v1/ListPeersRequest';
import type { ListPeersResponse as _messaging_v1_ListPeersResponse, ListPeersResponse__Output as _messaging_v1_ListPeersResponse__Output } from './messaging/v1/ListPeersResponse';
import type { Message as _messaging_v1_Message, Message__Output as _messaging_v1_Message__Output } from './messaging/v1/Message';
import type { MessengerClient as _messaging_v1_MessengerClient, MessengerDefinition as _messaging_v1_MessengerDefinition } from './messaging/v1/Messenger';
import type { PeerInfo as _messaging_v1_PeerInfo, PeerInfo__Output as _messaging_v1_PeerInfo__Output } from './messaging/v1/PeerInfo';
import type { PeersClient as _messaging_v1_PeersClient, PeersDefinition as _messaging_v1_PeersDefinition } from './messaging/v1/Peers';
import type { PutPeerRequest as _messaging_v1_PutPeerRequest, PutPeerRequest__Output as _messaging_v1_PutPeerRequest__Output } from './messaging/v1/PutPeerRequest';
import type { PutPeerResponse as _messaging_v1_PutPeerResponse, PutPeerResponse__Output as _messaging_v1_PutPeerResponse__Output } from './messaging/v1/PutPeerResponse';
import type { RequestManyRequest as _messaging_v1_RequestManyRequest, RequestManyRequest__Output as _messaging_v1_RequestManyRequest__Output } from './messaging/v1/RequestManyRequest';
import type { RequestManyResponse as _messaging_v1_RequestManyResponse, RequestManyResponse__Output as _messaging_v1_RequestManyResponse__Output } from './messaging/v1/RequestManyResponse';
import type { RequestRequest as _messaging_v1_RequestRequest, RequestRequest__Output as _messaging_v1_RequestRequest__Output } from './messaging/v1/RequestRequest';
import type { RequestResponse as _messaging_v1_RequestResponse, RequestResponse__Output as _messaging_v1_RequestResponse__Output } from './messaging/v1/RequestResponse';
import type { RequestStreamRequest as _messaging_v1_RequestStreamRequest, RequestStreamRequest__Output as _messaging_v1_RequestStreamRequest__Output } from './messaging/v1/RequestStreamRequest';
import type { RequestStreamResponse as _messaging_v1_RequestStreamResponse, RequestStreamResponse__Output as _messaging_v1_RequestStreamResponse__Output } from './messaging/v1/RequestStreamResponse';
import type { RespondRequest as _messaging_v1_RespondRequest, RespondRequest__Output as _messaging_v1_RespondRequest__Output } from './messaging/v1/RespondRequest';
import type { RespondResponse as _messaging_v1_RespondResponse, RespondResponse__Output as _messaging_v1_RespondResponse__Output } from './messaging/v1/RespondResponse';
import type { RespondStreamResponse as _messaging_v1_RespondStreamResponse, RespondStreamResponse__Output as _messaging_v1_RespondStreamResponse__Output } from './messaging/v1/RespondStreamResponse';
import type { SendRequest as _messaging_v1_SendRequest, SendRequest__Output as _messaging_v1_SendRequest__Output } from './messaging/v1/SendRequest';
import type { SendResponse as _messaging_v1_SendResponse, SendResponse__Output as _messaging_v1_SendResponse__Output } from './messaging/v1/SendResponse';
import type { SendStreamRequest as _messaging_v1_SendStreamRequest, SendStreamRequest__Output as _messaging_v1_SendStreamRequest__Output } from './messaging/v1/SendStreamRequest';
import type { SendStreamResponse as _messaging_v1_SendStreamResponse, SendStreamResponse__Output as _messaging_v1_SendStreamResponse__Output } from './messaging/v1/SendStreamResponse';
import type { SubscribeRequest as _messaging_v1_SubscribeRequest, SubscribeRequest__Output as _messaging_v1_SubscribeRequest__Output } from './messaging/v1/SubscribeRequest';
import type { Target as _messaging_v1_Target, Target__Output as _messaging_v1_Target__Output } from './messaging/v1/Target';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  messaging: {
    v1: {
      AckMode: EnumTypeDefinition
      DeletePeerRequest: MessageTypeDefinition<_messaging_v1_DeletePeerRequest, _messaging_v1_DeletePeerRequest__Output>
      DeletePeerResponse: MessageTypeDefinition<_messaging_v1_DeletePeerResponse, _messaging_v1_DeletePeerResponse__Output>
      Delivery: MessageTypeDefinition<_messaging_v1_Delivery, _messaging_v1_Delivery__Output>
      DeliveryBatch: MessageTypeDefinition<_messaging_v1_DeliveryBatch, _messaging_v1_DeliveryBatch__Output>
      ListPeersRequest: MessageTypeDefinition<_messaging_v1_ListPeersRequest, _messaging_v1_ListPeersRequest__Output>
      ListPeersResponse: MessageTypeDefinition<_messaging_v1_ListPeersResponse, _messaging_v1_ListPeersResponse__Output>
      Message: MessageTypeDefinition<_messaging_v1_Message, _messaging_v1_Message__Output>
      Messenger: SubtypeConstructor<typeof grpc.Client, _messaging_v1_MessengerClient> & { service: _messaging_v1_MessengerDefinition }
      PeerInfo: MessageTypeDefinition<_messaging_v1_PeerInfo, _messaging_v1_PeerInfo__Output>
      Peers: SubtypeConstructor<typeof grpc.Client, _messaging_v1_PeersClient> & { service: _messaging_v1_PeersDefinition }
      PutPeerRequest: MessageTypeDefinition<_messaging_v1_PutPeerRequest, _messaging_v1_PutPeerRequest__Output>
      PutPeerResponse: MessageTypeDefinition<_messaging_v1_PutPeerResponse, _messaging_v1_PutPeerResponse__Output>
      RequestManyRequest: MessageTypeDefinition<_messaging_v1_RequestManyRequest, _messaging_v1_RequestManyRequest__Output>
      RequestManyResponse: MessageTypeDefinition<_messaging_v1_RequestManyResponse, _messaging_v1_RequestManyResponse__Output>
      RequestRequest: MessageTypeDefinition<_messaging_v1_RequestRequest, _messaging_v1_RequestRequest__Output>
      RequestResponse: MessageTypeDefinition<_messaging_v1_RequestResponse, _messaging_v1_RequestResponse__Output>
      RequestStreamRequest: MessageTypeDefinition<_messaging_v1_RequestStreamRequest, _messaging_v1_RequestStreamRequest__Output>
      RequestStreamResponse: MessageTypeDefinition<_messaging_v1_RequestStreamResponse, _messaging_v1_RequestStreamResponse__Output>
      RespondRequest: MessageTypeDefinition<_messaging_v1_RespondRequest, _messaging_v1_RespondRequest__Output>
      RespondResponse: MessageTypeDefinition<_messaging_v1_RespondResponse, _messaging_v1_RespondResponse__Output>
      RespondStreamResponse: MessageTypeDefinition<_messaging_v1_RespondStreamResponse, _messaging_v1_RespondStreamResponse__Output>
      SendRequest: MessageTypeDefinition<_messaging_v1_SendRequest, _messaging_v1_SendRequest__Output>
      SendResponse: MessageTypeDefinition<_messaging_v1_SendResponse, _messaging_v1_SendResponse__Output>
      SendStreamRequest: MessageTypeDefinition<_messaging_v1_SendStreamRequest, _messaging_v1_SendStreamRequest__Output>
      SendStreamResponse: MessageTypeDefinition<_messaging_v1_SendStreamResponse, _messaging_v1_SendStreamResponse__Output>
      SlowConsumerPolicy: EnumTypeDefinition
      SubscribeRequest: MessageTypeDefinition<_messaging_v1_SubscribeRequest, _messaging_v1_SubscribeRequest__Output>
      Target: MessageTypeDefinition<_messaging_v1_Target, _messaging_v1_Target__Output>
    }
  }
}

