// Original file: proto/messaging/v1/messaging.proto


export interface Target {
  'peerId'?: (string);
  'address'?: (string);
  'kind'?: "peerId"|"address";
}

export interface Target__Output {
  'peerId'?: (string);
  'address'?: (string);
  'kind'?: "peerId"|"address";
}
