// Original file: proto/messaging/v1/messaging.proto


export interface DeletePeerRequest {
  'id'?: (string);
}

export interface DeletePeerRequest__Output {
  'id': (string);
}
