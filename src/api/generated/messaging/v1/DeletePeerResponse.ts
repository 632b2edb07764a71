// Original file: proto/messaging/v1/messaging.proto


export interface DeletePeerResponse {
}

export interface DeletePeerResponse__Output {
}
