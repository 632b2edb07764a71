// Original file: proto/messaging/v1/messaging.proto

import type { Message as _messaging_v1_Message, Message__Output as _messaging_v1_Message__Output } from '../../messaging/v1/Message';

export interface RequestManyResponse {
  'reply'?: (_messaging_v1_Message | null);
  'responderPeer'?: (string);
}

export interface RequestManyResponse__Output {
  'reply': (_messaging_v1_Message__Output | null);
  'responderPeer': (string);
}
