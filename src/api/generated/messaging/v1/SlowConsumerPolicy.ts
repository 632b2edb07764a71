// Original file: proto/messaging/v1/messaging.proto

export const SlowConsumerPolicy = {
  SLOW_CONSUMER_POLICY_UNSPECIFIED: 'SLOW_CONSUMER_POLICY_UNSPECIFIED',
  DROP_OLDEST: 'DROP_OLDEST',
  DROP_NEWEST: 'DROP_NEWEST',
  CLOSE: 'CLOSE',
} as const;

export type SlowConsumerPolicy =
  | 'SLOW_CONSUMER_POLICY_UNSPECIFIED'
  | 0
  | 'DROP_OLDEST'
  | 1
  | 'DROP_NEWEST'
  | 2
  | 'CLOSE'
  | 3

export type SlowConsumerPolicy__Output = typeof SlowConsumerPolicy[keyof typeof SlowConsumerPolicy]
