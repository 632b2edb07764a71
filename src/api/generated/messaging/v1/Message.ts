// Original file: proto/messaging/v1/messaging.proto


export interface Message {
  'id'?: (string);
  'topic'?: (string);
  'payload'?: (Buffer | Uint8Array | string);
  'headers'?: ({[key: string]: string});
}

export interface Message__Output {
  'id': (string);
  'topic': (string);
  'payload': (Buffer);
  'headers': ({[key: string]: string});
}
