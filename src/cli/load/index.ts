/** Load generation shared by `meshwire bench` (bench.ts); pure of printing. */
export { LatencyHistogram, asciiHistogram } from './histogram';
export type { LatencySummary } from './histogram';
export { StopSignal } from './messenger';
export type { LoadLimits, MessengerApi } from './messenger';
export {
  CreditGate,
  PublisherStats,
  SubscriberStats,
  STAMP_BYTES,
  creditLimit,
  runPublisher,
  startSubscriber,
} from './pubsub';
export type { PubSubParams, PublishGate, PublishLoad, PublisherOptions } from './pubsub';
export {
  RequesterStats,
  ResponderStats,
  RESPONDER_GROUP,
  runRequester,
  startResponder,
} from './request';
export type { RequestParams } from './request';
