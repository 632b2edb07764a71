// Original file: proto/messaging/v1/messaging.proto

import type { Message as _messaging_v1_Message, Message__Output as _messaging_v1_Message__Output } from '../../messaging/v1/Message';

export interface RequestStreamResponse {
  'requestId'?: (string);
  'reply'?: (_messaging_v1_Message | null);
  'errorCode'?: (number);
  'errorMessage'?: (string);
  'responderPeer'?: (string);
}

export interface RequestStreamResponse__Output {
  'requestId': (string);
  'reply': (_messaging_v1_Message__Output | null);
  'errorCode': (number);
  'errorMessage': (string);
  'responderPeer': (string);
}
