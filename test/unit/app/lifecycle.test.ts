/**
 * The component lifecycle (src/app/lifecycle.ts): start in order, roll back in reverse
 * on a failure, stop in two phases (every beforeStop at once, then every stop in reverse).
 */
import test from 'ava';
import type { Component } from '../../../src/app';
import { startComponents, stopComponents } from '../../../src/app';

/** A component that records its calls in `log`; `failStart` makes start() reject. */
function recorder(name: string, log: string[], failStart = false, drains = false): Component {
  return {
    name,
    start: () => {
      log.push(`start ${name}`);
      return failStart ? Promise.reject(new Error(`${name} cannot start`)) : Promise.resolve();
    },
    ...(drains
      ? {
          beforeStop: async () => {
            log.push(`beforeStop ${name}`);
            await new Promise(r => setTimeout(r, 10));
            log.push(`drained ${name}`);
          },
        }
      : {}),
    stop: () => {
      log.push(`stop ${name}`);
      return Promise.resolve();
    },
  };
}

test('start in order; stop: every beforeStop begun in reverse in the same tick, then stop in reverse', async t => {
  const log: string[] = [];
  const cs = [
    recorder('socket', log),
    recorder('node', log, false, true),
    recorder('grpc', log, false, true),
  ];
  await startComponents(cs);
  t.deepEqual(log, ['start socket', 'start node', 'start grpc']);
  log.length = 0;
  const stopped = stopComponents(cs);
  // Both beforeStop calls began before stopComponents returned its promise.
  t.deepEqual(log, ['beforeStop grpc', 'beforeStop node']);
  await stopped;
  t.deepEqual(log.slice(2, 4).sort(), ['drained grpc', 'drained node']);
  t.deepEqual(log.slice(4), ['stop grpc', 'stop node', 'stop socket']);
});

test('a failed start stops what started, in reverse, and rethrows; later components never start', async t => {
  const log: string[] = [];
  const cs = [
    recorder('socket', log),
    recorder('node', log, false, true),
    recorder('grpc', log, true),
    recorder('metrics', log),
  ];
  await t.throwsAsync(startComponents(cs), { message: 'grpc cannot start' });
  t.deepEqual(log, ['start socket', 'start node', 'start grpc', 'stop node', 'stop socket']);
});

test('a stop that fails does not keep the others from stopping', async t => {
  const log: string[] = [];
  const broken: Component = {
    name: 'broken',
    start: () => Promise.resolve(),
    stop: () => Promise.reject(new Error('stuck')),
  };
  await stopComponents([recorder('socket', log), broken, recorder('grpc', log)]);
  t.deepEqual(log, ['stop grpc', 'stop socket']);
});
