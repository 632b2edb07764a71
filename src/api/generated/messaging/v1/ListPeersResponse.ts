// Original file: proto/messaging/v1/messaging.proto

import type { PeerInfo as _messaging_v1_PeerInfo, PeerInfo__Output as _messaging_v1_PeerInfo__Output } from '../../messaging/v1/PeerInfo';

export interface ListPeersResponse {
  'peers'?: (_messaging_v1_PeerInfo)[];
}

export interface ListPeersResponse__Output {
  'peers': (_messaging_v1_PeerInfo__Output)[];
}
