// Original file: proto/messaging/v1/messaging.proto

import type { Target as _messaging_v1_Target, Target__Output as _messaging_v1_Target__Output } from '../../messaging/v1/Target';
import type { Message as _messaging_v1_Message, Message__Output as _messaging_v1_Message__Output } from '../../messaging/v1/Message';
import type { AckMode as _messaging_v1_AckMode, AckMode__Output as _messaging_v1_AckMode__Output } from '../../messaging/v1/AckMode';

export interface SendRequest {
  'target'?: (_messaging_v1_Target | null);
  'message'?: (_messaging_v1_Message | null);
  'ack'?: (_messaging_v1_AckMode);
  'failFast'?: (boolean);
  'idempotencyKey'?: (string);
}

export interface SendRequest__Output {
  'target': (_messaging_v1_Target__Output | null);
  'message': (_messaging_v1_Message__Output | null);
  'ack': (_messaging_v1_AckMode__Output);
  'failFast': (boolean);
  'idempotencyKey': (string);
}
