import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import test from 'ava';
import { V8_FLAGS, runtimeFlags } from '../../../src/common/runtime';

test('runtimeFlags: the V8 tuning by default, none with MESHWIRE_V8_TUNING=off', t => {
  t.deepEqual(runtimeFlags({}), [...V8_FLAGS]);
  t.true(V8_FLAGS.includes('--no-concurrent-array-buffer-sweeping'));
  t.deepEqual(runtimeFlags({ MESHWIRE_V8_TUNING: 'off' }), []);
  // a copy: callers may append their own flags
  const flags = runtimeFlags({});
  flags.push('--x');
  t.deepEqual(runtimeFlags({}), [...V8_FLAGS]);
});

test('tuneRuntime in a fresh process: applies once, V8 accepts the flag, opt-out honoured', t => {
  const runtime = join(__dirname, '..', '..', '..', 'src', 'common', 'runtime.js');
  const script = `const r = require(${JSON.stringify(runtime)});
    const first = r.tuneRuntime(); const second = r.tuneRuntime();
    // allocation churn after the flag change must run clean
    let n = 0; for (let i = 0; i < 20000; i++) n += Buffer.alloc(1500).length;
    console.log(JSON.stringify({ first, second, n }));`;
  const run = (env: NodeJS.ProcessEnv) =>
    spawnSync(process.execPath, ['-e', script], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
    });
  const on = run({ MESHWIRE_V8_TUNING: '' });
  t.is(on.status, 0, on.stderr);
  t.deepEqual(JSON.parse(on.stdout), { first: true, second: true, n: 20000 * 1500 });
  t.notRegex(on.stderr, /unrecognized|unknown/i, 'V8 knows the flag');
  const off = run({ MESHWIRE_V8_TUNING: 'off' });
  t.is(off.status, 0, off.stderr);
  t.deepEqual(JSON.parse(off.stdout), { first: false, second: false, n: 20000 * 1500 });
});
