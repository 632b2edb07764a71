// Original file: proto/messaging/v1/messaging.proto

import type { Target as _messaging_v1_Target, Target__Output as _messaging_v1_Target__Output } from '../../messaging/v1/Target';
import type { Message as _messaging_v1_Message, Message__Output as _messaging_v1_Message__Output } from '../../messaging/v1/Message';
import type { AckMode as _messaging_v1_AckMode, AckMode__Output as _messaging_v1_AckMode__Output } from '../../messaging/v1/AckMode';
import type { Long } from '@grpc/proto-loader';

export interface SendStreamRequest {
  'sequence'?: (number | string | Long);
  'target'?: (_messaging_v1_Target | null);
  'messages'?: (_messaging_v1_Message)[];
  'ack'?: (_messaging_v1_AckMode);
}

export interface SendStreamRequest__Output {
  'sequence': (number);
  'target': (_messaging_v1_Target__Output | null);
  'messages': (_messaging_v1_Message__Output)[];
  'ack': (_messaging_v1_AckMode__Output);
}
