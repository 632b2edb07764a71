// Original file: proto/messaging/v1/messaging.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { DeliveryBatch as _messaging_v1_DeliveryBatch, DeliveryBatch__Output as _messaging_v1_DeliveryBatch__Output } from '../../messaging/v1/DeliveryBatch';
import type { RequestManyRequest as _messaging_v1_RequestManyRequest, RequestManyRequest__Output as _messaging_v1_RequestManyRequest__Output } from '../../messaging/v1/RequestManyRequest';
import type { RequestManyResponse as _messaging_v1_RequestManyResponse, RequestManyResponse__Output as _messaging_v1_RequestManyResponse__Output } from '../../messaging/v1/RequestManyResponse';
import type { RequestRequest as _messaging_v1_RequestRequest, RequestRequest__Output as _messaging_v1_RequestRequest__Output } from '../../messaging/v1/RequestRequest';
import type { RequestResponse as _messaging_v1_RequestResponse, RequestResponse__Output as _messaging_v1_RequestResponse__Output } from '../../messaging/v1/RequestResponse';
import type { RequestStreamRequest as _messaging_v1_RequestStreamRequest, RequestStreamRequest__Output as _messaging_v1_RequestStreamRequest__Output } from '../../messaging/v1/RequestStreamRequest';
import type { RequestStreamResponse as _messaging_v1_RequestStreamResponse, RequestStreamResponse__Output as _messaging_v1_RequestStreamResponse__Output } from '../../messaging/v1/RequestStreamResponse';
import type { RespondRequest as _messaging_v1_RespondRequest, RespondRequest__Output as _messaging_v1_RespondRequest__Output } from '../../messaging/v1/RespondRequest';
import type { RespondResponse as _messaging_v1_RespondResponse, RespondResponse__Output as _messaging_v1_RespondResponse__Output } from '../../messaging/v1/RespondResponse';
import type { RespondStreamResponse as _messaging_v1_RespondStreamResponse, RespondStreamResponse__Output as _messaging_v1_RespondStreamResponse__Output } from '../../messaging/v1/RespondStreamResponse';
import type { SendRequest as _messaging_v1_SendRequest, SendRequest__Output as _messaging_v1_SendRequest__Output } from '../../messaging/v1/SendRequest';
import type { SendResponse as _messaging_v1_SendResponse, SendResponse__Output as _messaging_v1_SendResponse__Output } from '../../messaging/v1/SendResponse';
import type { SendStreamRequest as _messaging_v1_SendStreamRequest, SendStreamRequest__Output as _messaging_v1_SendStreamRequest__Output } from '../../messaging/v1/SendStreamRequest';
import type { SendStreamResponse as _messaging_v1_SendStreamResponse, SendStreamResponse__Output as _messaging_v1_SendStreamResponse__Output } from '../../messaging/v1/SendStreamResponse';
import type { SubscribeRequest as _messaging_v1_SubscribeRequest, SubscribeRequest__Output as _messaging_v1_SubscribeRequest__Output } from '../../messaging/v1/SubscribeRequest';

export interface MessengerClient extends grpc.Client {
  Request(argument: _messaging_v1_RequestRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_messaging_v1_RequestResponse__Output>): grpc.ClientUnaryCall;
  Request(argument: _messaging_v1_RequestRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_messaging_v1_RequestResponse__Output>): grpc.ClientUnaryCall;
  Request(argument: _messaging_v1_RequestRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_messaging_v1_RequestResponse__Output>): grpc.ClientUnaryCall;
  Request(argument: _messaging_v1_RequestRequest, callback: grpc.requestCallback<_messaging_v1_RequestResponse__Output>): grpc.ClientUnaryCall;
  request(argument: _messaging_v1_RequestRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_messaging_v1_RequestResponse__Output>): grpc.ClientUnaryCall;
  request(argument: _messaging_v1_RequestRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_messaging_v1_RequestResponse__Output>): grpc.ClientUnaryCall;
  request(argument: _messaging_v1_RequestRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_messaging_v1_RequestResponse__Output>): grpc.ClientUnaryCall;
  request(argument: _messaging_v1_RequestRequest, callback: grpc.requestCallback<_messaging_v1_RequestResponse__Output>): grpc.ClientUnaryCall;
  
  RequestMany(argument: _messaging_v1_RequestManyRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_messaging_v1_RequestManyResponse__Output>;
  RequestMany(argument: _messaging_v1_RequestManyRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_messaging_v1_RequestManyResponse__Output>;
  requestMany(argument: _messaging_v1_RequestManyRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_messaging_v1_RequestManyResponse__Output>;
  requestMany(argument: _messaging_v1_RequestManyRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_messaging_v1_RequestManyResponse__Output>;
  
  RequestStream(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_messaging_v1_RequestStreamRequest, _messaging_v1_RequestStreamResponse__Output>;
  RequestStream(options?: grpc.CallOptions): grpc.ClientDuplexStream<_messaging_v1_RequestStreamRequest, _messaging_v1_RequestStreamResponse__Output>;
  requestStream(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_messaging_v1_RequestStreamRequest, _messaging_v1_RequestStreamResponse__Output>;
  requestStream(options?: grpc.CallOptions): grpc.ClientDuplexStream<_messaging_v1_RequestStreamRequest, _messaging_v1_RequestStreamResponse__Output>;
  
  Respond(argument: _messaging_v1_RespondRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_messaging_v1_RespondResponse__Output>): grpc.ClientUnaryCall;
  Respond(argument: _messaging_v1_RespondRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_messaging_v1_RespondResponse__Output>): grpc.ClientUnaryCall;
  Respond(argument: _messaging_v1_RespondRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_messaging_v1_RespondResponse__Output>): grpc.ClientUnaryCall;
  Respond(argument: _messaging_v1_RespondRequest, callback: grpc.requestCallback<_messaging_v1_RespondResponse__Output>): grpc.ClientUnaryCall;
  respond(argument: _messaging_v1_RespondRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_messaging_v1_RespondResponse__Output>): grpc.ClientUnaryCall;
  respond(argument: _messaging_v1_RespondRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_messaging_v1_RespondResponse__Output>): grpc.ClientUnaryCall;
  respond(argument: _messaging_v1_RespondRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_messaging_v1_RespondResponse__Output>): grpc.ClientUnaryCall;
  respond(argument: _messaging_v1_RespondRequest, callback: grpc.requestCallback<_messaging_v1_RespondResponse__Output>): grpc.ClientUnaryCall;
  
  RespondStream(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_messaging_v1_RespondStreamResponse__Output>): grpc.ClientWritableStream<_messaging_v1_RespondRequest>;
  RespondStream(metadata: grpc.Metadata, callback: grpc.requestCallback<_messaging_v1_RespondStreamResponse__Output>): grpc.ClientWritableStream<_messaging_v1_RespondRequest>;
  RespondStream(options: grpc.CallOptions, callback: grpc.requestCallback<_messaging_v1_RespondStreamResponse__Output>): grpc.ClientWritableStream<_messaging_v1_RespondRequest>;
  RespondStream(callback: grpc.requestCallback<_messaging_v1_RespondStreamResponse__Output>): grpc.ClientWritableStream<_messaging_v1_RespondRequest>;
  respondStream(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_messaging_v1_RespondStreamResponse__Output>): grpc.ClientWritableStream<_messaging_v1_RespondRequest>;
  respondStream(metadata: grpc.Metadata, callback: grpc.requestCallback<_messaging_v1_RespondStreamResponse__Output>): grpc.ClientWritableStream<_messaging_v1_RespondRequest>;
  respondStream(options: grpc.CallOptions, callback: grpc.requestCallback<_messaging_v1_RespondStreamResponse__Output>): grpc.ClientWritableStream<_messaging_v1_RespondRequest>;
  respondStream(callback: grpc.requestCallback<_messaging_v1_RespondStreamResponse__Output>): grpc.ClientWritableStream<_messaging_v1_RespondRequest>;
  
  Send(argument: _messaging_v1_SendRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_messaging_v1_SendResponse__Output>): grpc.ClientUnaryCall;
  Send(argument: _messaging_v1_SendRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_messaging_v1_SendResponse__Output>): grpc.ClientUnaryCall;
  Send(argument: _messaging_v1_SendRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_messaging_v1_SendResponse__Output>): grpc.ClientUnaryCall;
  Send(argument: _messaging_v1_SendRequest, callback: grpc.requestCallback<_messaging_v1_SendResponse__Output>): grpc.ClientUnaryCall;
  send(argument: _messaging_v1_SendRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_messaging_v1_SendResponse__Output>): grpc.ClientUnaryCall;
  send(argument: _messaging_v1_SendRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_messaging_v1_SendResponse__Output>): grpc.ClientUnaryCall;
  send(argument: _messaging_v1_SendRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_messaging_v1_SendResponse__Output>): grpc.ClientUnaryCall;
  send(argument: _messaging_v1_SendRequest, callback: grpc.requestCallback<_messaging_v1_SendResponse__Output>): grpc.ClientUnaryCall;
  
  SendStream(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_messaging_v1_SendStreamRequest, _messaging_v1_SendStreamResponse__Output>;
  SendStream(options?: grpc.CallOptions): grpc.ClientDuplexStream<_messaging_v1_SendStreamRequest, _messaging_v1_SendStreamResponse__Output>;
  sendStream(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_messaging_v1_SendStreamRequest, _messaging_v1_SendStreamResponse__Output>;
  sendStream(options?: grpc.CallOptions): grpc.ClientDuplexStream<_messaging_v1_SendStreamRequest, _messaging_v1_SendStreamResponse__Output>;
  
  Subscribe(argument: _messaging_v1_SubscribeRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_messaging_v1_DeliveryBatch__Output>;
  Subscribe(argument: _messaging_v1_SubscribeRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_messaging_v1_DeliveryBatch__Output>;
  subscribe(argument: _messaging_v1_SubscribeRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_messaging_v1_DeliveryBatch__Output>;
  subscribe(argument: _messaging_v1_SubscribeRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_messaging_v1_DeliveryBatch__Output>;
  
}

export interface MessengerHandlers extends grpc.UntypedServiceImplementation {
  Request: grpc.handleUnaryCall<_messaging_v1_RequestRequest__Output, _messaging_v1_RequestResponse>;
  
  RequestMany: grpc.handleServerStreamingCall<_messaging_v1_RequestManyRequest__Output, _messaging_v1_RequestManyResponse>;
  
  RequestStream: grpc.handleBidiStreamingCall<_messaging_v1_RequestStreamRequest__Output, _messaging_v1_RequestStreamResponse>;
  
  Respond: grpc.handleUnaryCall<_messaging_v1_RespondRequest__Output, _messaging_v1_RespondResponse>;
  
  RespondStream: grpc.handleClientStreamingCall<_messaging_v1_RespondRequest__Output, _messaging_v1_RespondStreamResponse>;
  
  Send: grpc.handleUnaryCall<_messaging_v1_SendRequest__Output, _messaging_v1_SendResponse>;
  
  SendStream: grpc.handleBidiStreamingCall<_messaging_v1_SendStreamRequest__Output, _messaging_v1_SendStreamResponse>;
  
  Subscribe: grpc.handleServerStreamingCall<_messaging_v1_SubscribeRequest__Output, _messaging_v1_DeliveryBatch>;
  
}

export interface MessengerDefinition extends grpc.ServiceDefinition {
  Request: MethodDefinition<_messaging_v1_RequestRequest, _messaging_v1_RequestResponse, _messaging_v1_RequestRequest__Output, _messaging_v1_RequestResponse__Output>
  RequestMany: MethodDefinition<_messaging_v1_RequestManyRequest, _messaging_v1_RequestManyResponse, _messaging_v1_RequestManyRequest__Output, _messaging_v1_RequestManyResponse__Output>
  RequestStream: MethodDefinition<_messaging_v1_RequestStreamRequest, _messaging_v1_RequestStreamResponse, _messaging_v1_RequestStreamRequest__Output, _messaging_v1_RequestStreamResponse__Output>
  Respond: MethodDefinition<_messaging_v1_RespondRequest, _messaging_v1_RespondResponse, _messaging_v1_RespondRequest__Output, _messaging_v1_RespondResponse__Output>
  RespondStream: MethodDefinition<_messaging_v1_RespondRequest, _messaging_v1_RespondStreamResponse, _messaging_v1_RespondRequest__Output, _messaging_v1_RespondStreamResponse__Output>
  Send: MethodDefinition<_messaging_v1_SendRequest, _messaging_v1_SendResponse, _messaging_v1_SendRequest__Output, _messaging_v1_SendResponse__Output>
  SendStream: MethodDefinition<_messaging_v1_SendStreamRequest, _messaging_v1_SendStreamResponse, _messaging_v1_SendStreamRequest__Output, _messaging_v1_SendStreamResponse__Output>
  Subscribe: MethodDefinition<_messaging_v1_SubscribeRequest, _messaging_v1_DeliveryBatch, _messaging_v1_SubscribeRequest__Output, _messaging_v1_DeliveryBatch__Output>
}
