// Original file: proto/messaging/v1/messaging.proto

import type { PeerInfo as _messaging_v1_PeerInfo, PeerInfo__Output as _messaging_v1_PeerInfo__Output } from '../../messaging/v1/PeerInfo';

export interface PutPeerResponse {
  'peer'?: (_messaging_v1_PeerInfo | null);
}

export interface PutPeerResponse__Output {
  'peer': (_messaging_v1_PeerInfo__Output | null);
}
