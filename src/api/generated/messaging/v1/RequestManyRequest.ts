// Original file: proto/messaging/v1/messaging.proto

import type { Target as _messaging_v1_Target, Target__Output as _messaging_v1_Target__Output } from '../../messaging/v1/Target';
import type { Message as _messaging_v1_Message, Message__Output as _messaging_v1_Message__Output } from '../../messaging/v1/Message';

export interface RequestManyRequest {
  'target'?: (_messaging_v1_Target | null);
  'message'?: (_messaging_v1_Message | null);
  'timeoutMs'?: (number);
  'maxReplies'?: (number);
  'stallMs'?: (number);
}

export interface RequestManyRequest__Output {
  'target': (_messaging_v1_Target__Output | null);
  'message': (_messaging_v1_Message__Output | null);
  'timeoutMs': (number);
  'maxReplies': (number);
  'stallMs': (number);
}
