/** Congestion controllers, selected by name. */
import { Bbr } from './bbr';
import type {
  CongestionAlgorithm,
  CongestionController,
  CongestionInit,
} from './congestion-controller';
import { Cubic } from './cubic';
import { NewReno } from './newreno';

export { Bbr } from './bbr';
export { Cubic, cubicK, cubicWindow } from './cubic';
export { NewReno } from './newreno';
export type {
  AckEvent,
  CongestionAlgorithm,
  CongestionController,
  CongestionInit,
  LossEvent,
  RateSample,
} from './congestion-controller';

export function createCongestionController(
  algorithm: CongestionAlgorithm,
  init: CongestionInit
): CongestionController {
  switch (algorithm) {
    case 'bbr':
      return new Bbr(init);
    case 'cubic':
      return new Cubic(init);
    case 'newreno':
      return new NewReno(init);
  }
}
