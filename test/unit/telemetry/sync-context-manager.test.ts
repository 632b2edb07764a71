import { ROOT_CONTEXT, createContextKey } from '@opentelemetry/api';
import test from 'ava';
import { SyncContextManager } from '../../../src/telemetry/sync-context-manager';

const KEY = createContextKey('k');

test('SyncContextManager: with() sets the active context for the synchronous call only', async t => {
  const cm = new SyncContextManager();
  const a = ROOT_CONTEXT.setValue(KEY, 'a');
  const b = ROOT_CONTEXT.setValue(KEY, 'b');
  t.is(cm.active(), ROOT_CONTEXT);
  const seen: unknown[] = [];
  const result = cm.with(
    a,
    (x: number) => {
      seen.push(cm.active().getValue(KEY));
      cm.with(b, () => seen.push(cm.active().getValue(KEY)));
      seen.push(cm.active().getValue(KEY), x);
      return 42;
    },
    undefined,
    7
  );
  t.is(result, 42);
  t.deepEqual(seen, ['a', 'b', 'a', 7], 'nested and restored, arguments passed');
  t.is(cm.active(), ROOT_CONTEXT, 'restored after the call');
  t.throws(() =>
    cm.with(a, () => {
      throw new Error('boom');
    })
  );
  t.is(cm.active(), ROOT_CONTEXT, 'restored after a throw');
  // nothing follows an await: the continuation runs with the context active then
  let later: unknown = 'unset';
  await cm.with(a, async () => {
    await Promise.resolve();
    later = cm.active().getValue(KEY);
  });
  t.is(later, undefined, 'async continuations do not inherit (by design)');
  cm.with(a, () => cm.disable());
  t.is(cm.active(), ROOT_CONTEXT);
});
