// Original file: proto/messaging/v1/messaging.proto


export interface ListPeersRequest {
}

export interface ListPeersRequest__Output {
}
