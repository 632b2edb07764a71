// Original file: proto/messaging/v1/messaging.proto


export interface RespondResponse {
}

export interface RespondResponse__Output {
}
