// Original file: proto/messaging/v1/messaging.proto


export interface PutPeerRequest {
  'id'?: (string);
  'addresses'?: (string)[];
}

export interface PutPeerRequest__Output {
  'id': (string);
  'addresses': (string)[];
}
