// Original file: proto/messaging/v1/messaging.proto

import type { Long } from '@grpc/proto-loader';

export interface SendStreamResponse {
  'sequence'?: (number | string | Long);
  'ids'?: (string)[];
  'delivered'?: (number);
  'errorCode'?: (number);
  'errorMessage'?: (string);
}

export interface SendStreamResponse__Output {
  'sequence': (number);
  'ids': (string)[];
  'delivered': (number);
  'errorCode': (number);
  'errorMessage': (string);
}
