// Original file: proto/messaging/v1/messaging.proto


export interface SendResponse {
  'id'?: (string);
  'delivered'?: (number);
  'duplicate'?: (boolean);
}

export interface SendResponse__Output {
  'id': (string);
  'delivered': (number);
  'duplicate': (boolean);
}
