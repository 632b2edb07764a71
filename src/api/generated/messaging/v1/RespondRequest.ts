// Original file: proto/messaging/v1/messaging.proto

import type { Message as _messaging_v1_Message, Message__Output as _messaging_v1_Message__Output } from '../../messaging/v1/Message';

export interface RespondRequest {
  'replyTo'?: (string);
  'message'?: (_messaging_v1_Message | null);
}

export interface RespondRequest__Output {
  'replyTo': (string);
  'message': (_messaging_v1_Message__Output | null);
}
