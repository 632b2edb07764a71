// Original file: proto/messaging/v1/messaging.proto

import type { Message as _messaging_v1_Message, Message__Output as _messaging_v1_Message__Output } from '../../messaging/v1/Message';

export interface Delivery {
  'message'?: (_messaging_v1_Message | null);
  'sourcePeer'?: (string);
  'replyTo'?: (string);
}

export interface Delivery__Output {
  'message': (_messaging_v1_Message__Output | null);
  'sourcePeer': (string);
  'replyTo': (string);
}
