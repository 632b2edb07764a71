// Original file: proto/messaging/v1/messaging.proto

export const AckMode = {
  ACK_MODE_UNSPECIFIED: 'ACK_MODE_UNSPECIFIED',
  ACCEPTED: 'ACCEPTED',
  DELIVERED: 'DELIVERED',
} as const;

export type AckMode =
  | 'ACK_MODE_UNSPECIFIED'
  | 0
  | 'ACCEPTED'
  | 1
  | 'DELIVERED'
  | 2

export type AckMode__Output = typeof AckMode[keyof typeof AckMode]
