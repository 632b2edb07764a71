// Original file: proto/messaging/v1/messaging.proto

import type { Long } from '@grpc/proto-loader';

export interface RespondStreamResponse {
  'accepted'?: (number | string | Long);
  'rejected'?: (number | string | Long);
}

export interface RespondStreamResponse__Output {
  'accepted': (number);
  'rejected': (number);
}
