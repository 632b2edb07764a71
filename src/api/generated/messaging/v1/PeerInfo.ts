// Original file: proto/messaging/v1/messaging.proto

import type { Long } from '@grpc/proto-loader';

export interface PeerInfo {
  'id'?: (string);
  'addresses'?: (string)[];
  'source'?: (string);
  'state'?: (string);
  'srttUs'?: (number | string | Long);
  'inFlight'?: (number);
  'queueDepth'?: (number);
  'lastError'?: (string);
  'lastSeenUnixMs'?: (number | string | Long);
}

export interface PeerInfo__Output {
  'id': (string);
  'addresses': (string)[];
  'source': (string);
  'state': (string);
  'srttUs': (number);
  'inFlight': (number);
  'queueDepth': (number);
  'lastError': (string);
  'lastSeenUnixMs': (number);
}
