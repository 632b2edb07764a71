// Original file: proto/messaging/v1/messaging.proto

import type { SlowConsumerPolicy as _messaging_v1_SlowConsumerPolicy, SlowConsumerPolicy__Output as _messaging_v1_SlowConsumerPolicy__Output } from '../../messaging/v1/SlowConsumerPolicy';

export interface SubscribeRequest {
  'topics'?: (string)[];
  'queueGroup'?: (string);
  'maxBatch'?: (number);
  'slowConsumerPolicy'?: (_messaging_v1_SlowConsumerPolicy);
  'bufferSize'?: (number);
}

export interface SubscribeRequest__Output {
  'topics': (string)[];
  'queueGroup': (string);
  'maxBatch': (number);
  'slowConsumerPolicy': (_messaging_v1_SlowConsumerPolicy__Output);
  'bufferSize': (number);
}
