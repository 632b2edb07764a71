// Original file: proto/messaging/v1/messaging.proto

import type { Delivery as _messaging_v1_Delivery, Delivery__Output as _messaging_v1_Delivery__Output } from '../../messaging/v1/Delivery';
import type { Long } from '@grpc/proto-loader';

export interface DeliveryBatch {
  'deliveries'?: (_messaging_v1_Delivery)[];
  'dropped'?: (number | string | Long);
}

export interface DeliveryBatch__Output {
  'deliveries': (_messaging_v1_Delivery__Output)[];
  'dropped': (number);
}
