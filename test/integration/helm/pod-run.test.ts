/**
 * The chart's pod, run for real without Kubernetes: the node process gets exactly the
 * environment and mounted files that replica 0 of 3 would get from the rendered
 * manifests (ports moved to free ones), while its DNS peers do not resolve, as when pods
 * start in parallel. The chart's own `helm test` driver runs against it (default values,
 * and TLS with client certificates) and SIGTERM must drain and exit 0; the generated
 * tokens file must be accepted by the node and mean what the chart says: health open to
 * the kubelet's token-less probe, the admin token allowed everything, the helm-test token
 * only `helm-test.>`.
 */
import test from 'ava';
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client, ServiceError } from '@grpc/grpc-js';
import { credentials, makeGenericClientConstructor, Metadata } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { createClients } from '../../../src/api';
import type { K8sObject } from './chart-helpers';
import { CHART, ROOT, find, helm, materializePod, nodeContainer, render } from './chart-helpers';
import { makeCerts } from './test-certs';
import { waitFor } from '../../helpers/wait';

const CLI = join(ROOT, 'dist/src/cli/main.js');
const DRIVER = join(CHART, 'files/helm-test.js');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
}

/** Collects output and resolves on exit; kills the process after `limitMs` (a hang is a failure). */
function run(child: ChildProcess, limitMs: number): Promise<Exit> {
  let out = '';
  child.stdout?.on('data', d => (out += String(d)));
  child.stderr?.on('data', d => (out += String(d)));
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
  return new Promise(resolve =>
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out });
    })
  );
}

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, res => {
      let body = '';
      res.on('data', d => (body += String(d)));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

interface RunningPod {
  grpc: number;
  metrics: number;
  root: string;
  objects: K8sObject[];
  /** Mount path in the container -> where the test wrote it. */
  mounts: Record<string, string>;
  node: ChildProcess;
  exit: Promise<Exit>;
  /** SIGTERM, wait for the exit, remove the pod's files. */
  stop(): Promise<Exit>;
}

/** Starts replica 0 of the chart rendered with `valuesFiles`, on free ports. */
async function startPod(
  valuesFiles: string[],
  external: Record<string, Record<string, string>> = {},
  confined = false,
  /** Runs after the mounts are written, before the node starts (as an init container). */
  init: (mounts: Record<string, string>) => void = () => undefined
): Promise<RunningPod> {
  const [grpc, peer, metrics] = [await freePort(), await freePort(), await freePort()];
  const objects = render({
    valuesFiles,
    set: [`ports.grpc=${grpc}`, `ports.peer=${peer}`, `ports.metrics=${metrics}`],
  });
  // Confined, /tmp is a fresh tmpfs inside the pod: keep the pod's files elsewhere.
  const root = mkdtempSync(join(confined ? '/var/tmp' : tmpdir(), 'meshwire-pod-'));
  chmodSync(root, 0o755);
  const [cmd, ...args] = confined ? confine(objects, root) : [process.execPath, CLI, 'serve'];
  const view = materializePod(objects, 0, 'prod', root, 'worker-1', external);
  init(view.mounts);
  const node = spawn(cmd as string, args, {
    cwd: root,
    env: {
      PATH: process.env.PATH,
      ...view.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exit = run(node, 180_000);
  return {
    grpc,
    metrics,
    root,
    objects,
    mounts: view.mounts,
    node,
    exit,
    stop: async () => {
      node.kill('SIGTERM');
      const e = await exit;
      rmSync(root, { recursive: true, force: true });
      return e;
    },
  };
}

/**
 * The container's securityContext made real: a private mount namespace whose root
 * filesystem is read-only (readOnlyRootFilesystem) with an empty /tmp (the chart's
 * emptyDir), and the process running as the pod's runAsUser/runAsGroup with no
 * supplementary groups. Needs root (unshare, setpriv from util-linux).
 */
function confine(objects: K8sObject[], root: string): string[] {
  const sts = find(objects, 'StatefulSet');
  const pod = sts.spec.template.spec.securityContext as K8sObject;
  const c = nodeContainer(sts).securityContext as K8sObject;
  if (c.readOnlyRootFilesystem !== true) throw new Error('expected readOnlyRootFilesystem');
  const tmp = (nodeContainer(sts).volumeMounts as K8sObject[]).find(m => m.mountPath === '/tmp');
  if (!tmp) throw new Error('expected a /tmp volume');
  // The checkout is bind-mounted at <root>/app, as the image has it at /app: its own
  // parent directories (say a clone under /root) need not be open to the pod's user.
  const app = join(root, 'app');
  mkdirSync(app);
  const script = [
    'set -e',
    `mount --bind ${JSON.stringify(ROOT)} ${JSON.stringify(app)}`,
    `mount -o remount,bind,ro ${JSON.stringify(app)}`,
    'mount -o remount,bind,ro /',
    'mount -t tmpfs -o size=64m tmpfs /tmp',
    `exec setpriv --reuid=${pod.runAsUser as number} --regid=${pod.runAsGroup as number} --clear-groups --no-new-privs "$@"`,
  ].join('\n');
  const cli = join(app, 'dist/src/cli/main.js');
  return [
    'unshare',
    '-m',
    '--propagation',
    'private',
    'bash',
    '-c',
    script,
    'pod',
    process.execPath,
    cli,
    'serve',
  ];
}

function secretValue(objects: K8sObject[], name: string, key: string): string {
  return Buffer.from(find(objects, 'Secret', name).data[key] as string, 'base64').toString('utf8');
}

/** Runs the chart's helm test driver against the pod, as the test hook pod would. */
async function runDriver(pod: RunningPod, extraEnv: Record<string, string>): Promise<Exit> {
  const driver = spawn(process.execPath, [DRIVER], {
    env: {
      PATH: process.env.PATH,
      TEST_APP_DIR: ROOT,
      TEST_NODES: '127.0.0.1',
      TEST_GRPC_PORT: String(pod.grpc),
      TEST_TIMEOUT_SECONDS: '80',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return run(driver, 110_000);
}

/** Writes the CA of the chart-generated TLS Secret (what the test hook pod mounts). */
function caFile(pod: RunningPod): string {
  const file = join(pod.root, 'helm-test-ca.crt');
  writeFileSync(file, secretValue(pod.objects, 'mw-meshwire-tls', 'ca.crt'));
  return file;
}

/** Writes what the test hook pod mounts: the helm-test token from the generated Secret. */
function testTokenFile(pod: RunningPod): string {
  const file = join(pod.root, 'helm-test-token');
  writeFileSync(file, secretValue(pod.objects, 'mw-meshwire-auth', 'test-token'));
  return file;
}

test('replica 0 run from its rendered config under its securityContext (uid 65532, read-only root): helm test driver passes, metrics served, SIGTERM drains and exits 0', async t => {
  const pod = await startPod([], {}, true);
  t.is(find(pod.objects, 'StatefulSet').spec.replicas, 3);
  let stopped: Exit | undefined;
  try {
    // TLS is on by default: the driver verifies the node with the generated CA.
    const result = await runDriver(pod, {
      TEST_TOKEN_FILE: testTokenFile(pod),
      TEST_TLS_CA_FILE: caFile(pod),
    });
    if (result.code !== 0) {
      stopped = await pod.stop();
      t.log(stopped.out);
    }
    t.is(result.code, 0, result.out);
    t.regex(result.out, /127\.0\.0\.1: SERVING/);
    t.regex(result.out, /received round-trip-[0-9a-f]+ on 127\.0\.0\.1: OK/);

    // The confinement is real (the node answered, so it has exec'd): uid 65532, read-only root.
    const proc = `/proc/${pod.node.pid as number}`;
    t.regex(readFileSync(`${proc}/status`, 'utf8'), /^Uid:\s+65532\s/m);
    const rootMount = readFileSync(`${proc}/mounts`, 'utf8')
      .split('\n')
      .find(l => l.split(' ')[1] === '/');
    t.regex(rootMount ?? '', / ro[, ]/);

    const scrape = await httpGet(`http://127.0.0.1:${pod.metrics}/metrics`);
    t.is(scrape.status, 200);
    t.regex(scrape.body, /^meshwire_/m);
  } finally {
    const exit = stopped ?? (await pod.stop());
    t.is(exit.code, 0, exit.out);
    t.regex(exit.out, /"node_id":"mw-meshwire-0"/);
    t.regex(exit.out, /draining/);
  }
});

test('TLS with client certificates (values-tls.yaml): the helm test driver passes over mTLS, plaintext is refused', async t => {
  const certs = makeCerts(['mw-meshwire-0.mw-meshwire-headless.prod.svc.cluster.local']);
  const pod = await startPod(['values-tls.yaml'], { 'meshwire-tls': { ...certs } });
  const dir = join(pod.root, 'client');
  mkdirSync(dir);
  for (const [k, v] of Object.entries(certs)) writeFileSync(join(dir, k), v);
  try {
    const result = await runDriver(pod, {
      TEST_TOKEN_FILE: testTokenFile(pod),
      TEST_TLS_CA_FILE: join(dir, 'ca.crt'),
      TEST_TLS_CERT_FILE: join(dir, 'tls.crt'),
      TEST_TLS_KEY_FILE: join(dir, 'tls.key'),
    });
    t.is(result.code, 0, result.out);
    t.regex(result.out, /received round-trip-[0-9a-f]+ on 127\.0\.0\.1: OK/);

    // A plaintext client (what the kubelet's gRPC probe would be) gets no answer: hence
    // the chart's TCP probes under TLS.
    const Health = makeGenericClientConstructor(healthService, 'Health');
    const plain = new Health(`127.0.0.1:${pod.grpc}`, credentials.createInsecure());
    const code = await new Promise<number>(resolve =>
      plain.check({ service: '' }, { deadline: Date.now() + 3000 }, (err: ServiceError | null) =>
        resolve(err ? err.code : 0)
      )
    );
    plain.close();
    t.not(code, 0);
  } finally {
    const exit = await pod.stop();
    t.is(exit.code, 0, exit.out);
  }
});

/** Calls Messenger/Send (or another unary method) with an optional bearer token; resolves with the status code. */
function call(client: Client, method: string, req: unknown, token?: string): Promise<number> {
  const md = new Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  // grpc-js generated clients expose methods by name; the shape is checked by the proto.
  const fn = (client as unknown as Record<string, (...a: unknown[]) => void>)[method] as (
    ...a: unknown[]
  ) => void;
  return new Promise(resolve =>
    fn.call(client, req, md, { deadline: Date.now() + 10_000 }, (err: ServiceError | null) =>
      resolve(err ? err.code : 0)
    )
  );
}

test('default values (auth and TLS on): the generated tokens file is accepted and means admin-all, helm-test only helm-test.>; plaintext is refused', async t => {
  const pod = await startPod([]);
  const admin = secretValue(pod.objects, 'mw-meshwire-auth', 'admin-token');
  const tester = secretValue(pod.objects, 'mw-meshwire-auth', 'test-token');
  const address = `127.0.0.1:${pod.grpc}`;
  // The generated certificate names 127.0.0.1: verified against the generated CA.
  const tls = credentials.createSsl(
    Buffer.from(secretValue(pod.objects, 'mw-meshwire-tls', 'ca.crt'))
  );
  const Health = makeGenericClientConstructor(healthService, 'Health');
  const health = new Health(address, tls);
  const { messenger, peers, close } = createClients(address, { credentials: tls });
  try {
    // The kubelet's gRPC probe sends no token: health must answer anyway (retried while
    // the node starts).
    let status = '';
    const serving = async (): Promise<boolean> => {
      status = await new Promise<string>(resolve =>
        health.check(
          { service: '' },
          { deadline: Date.now() + 2000 },
          (err: ServiceError | null, res: { status: string }) =>
            resolve(err ? `error ${err.code}` : res.status)
        )
      );
      return status === 'SERVING';
    };
    await waitFor('health SERVING', serving, 80_000).catch(() => undefined);
    t.is(status, 'SERVING');

    const send = (topic: string, token?: string): Promise<number> =>
      call(messenger, 'Send', { message: { topic, payload: Buffer.from('x') } }, token);
    const UNAUTHENTICATED = 16;
    const PERMISSION_DENIED = 7;
    t.is(await send('helm-test.a'), UNAUTHENTICATED);
    t.is(await send('helm-test.a', 'not-a-token-at-all'), UNAUTHENTICATED);
    t.is(await send('helm-test.a', tester), 0);
    t.is(await send('orders.new', tester), PERMISSION_DENIED);
    t.is(await send('orders.new', admin), 0);
    t.is(await call(peers, 'ListPeers', {}, tester), PERMISSION_DENIED);
    t.is(await call(peers, 'ListPeers', {}, admin), 0);

    // Tokens never cross in plaintext: a plaintext client is not served.
    const plain = createClients(address);
    try {
      t.not(
        await call(
          plain.messenger,
          'Send',
          { message: { topic: 'helm-test.a', payload: Buffer.from('x') } },
          tester
        ),
        0
      );
    } finally {
      plain.close();
    }
  } finally {
    health.close();
    close();
    const exit = await pod.stop();
    t.is(exit.code, 0, exit.out);
    // Tokens are never logged.
    t.false(exit.out.includes(admin));
    t.false(exit.out.includes(tester));
  }
});

test("auth.certificateIdentities (values-tls-identities.yaml): a client certificate without a token gets the rendered identity's rights; tokens still work", async t => {
  const certs = makeCerts(['mw-meshwire-0.mw-meshwire-headless.prod.svc.cluster.local']);
  const pod = await startPod(['values-tls-identities.yaml'], { 'meshwire-tls': { ...certs } });
  const admin = secretValue(pod.objects, 'mw-meshwire-auth', 'admin-token');
  const address = `127.0.0.1:${pod.grpc}`;
  // The client presents a certificate from the CA the node trusts, with the pod's DNS SAN.
  const mtls = credentials.createSsl(
    Buffer.from(certs['ca.crt']),
    Buffer.from(certs['tls.key']),
    Buffer.from(certs['tls.crt'])
  );
  const { messenger, peers, close } = createClients(address, { credentials: mtls });
  try {
    const send = (topic: string, token?: string): Promise<number> =>
      call(messenger, 'Send', { message: { topic, payload: Buffer.from('x') } }, token);
    // Retried while the node starts.
    let first = -1;
    await waitFor(
      'the node to accept the certificate identity',
      async () => (first = await send('pods.a')) === 0,
      80_000
    ).catch(() => undefined);
    t.is(first, 0, 'no token: the certificate identity "pods" may publish to pods.>');
    const PERMISSION_DENIED = 7;
    t.is(await send('orders.new'), PERMISSION_DENIED);
    t.is(await call(peers, 'ListPeers', {}), PERMISSION_DENIED, 'not admin');
    t.is(await send('orders.new', admin), 0, 'a token decides when one is sent');
    t.is(await call(peers, 'ListPeers', {}, admin), 0);
  } finally {
    close();
    const exit = await pod.stop();
    t.is(exit.code, 0, exit.out);
    t.regex(exit.out, /"auth":"3 tokens \(1 by client certificate\)"/);
  }
});

test('NOTES: the `kubectl exec` CLI commands it prints work as printed against the pod (TLS with the mounted CA, the admin token)', async t => {
  const pod = await startPod([]);
  const responders: ChildProcess[] = [];
  try {
    const r = helm([
      'install',
      'mw',
      CHART,
      '--dry-run=client',
      '--namespace',
      'prod',
      '--set',
      `ports.grpc=${pod.grpc}`,
      '--set',
      `ports.peer=${pod.grpc + 1}`,
    ]);
    t.is(r.status, 0, r.stderr);
    const notes = r.stdout.slice(r.stdout.indexOf('\nNOTES:\n'));
    const execs = notes
      .split('\n')
      .filter(l => l.includes('kubectl -n prod exec mw-meshwire-0 -- '))
      .map(l => l.slice(l.indexOf(' -- ') + 4).trim());
    t.is(execs.length, 4, notes);
    const admin = secretValue(pod.objects, 'mw-meshwire-auth', 'admin-token');
    for (const line of execs) {
      // What kubectl would run in the container: the image's node and CLI, the mounted files.
      const argv = line
        .split(' ')
        .map(a => (a === '"$MESHWIRE_TOKEN"' ? admin : a))
        .map(a => (a === '/nodejs/bin/node' ? process.execPath : a))
        .map(a => a.replace(/^\/app\//, `${ROOT}/`))
        .map(a =>
          a.replace(/^\/etc\/meshwire\/tls\//, `${pod.mounts['/etc/meshwire/tls'] as string}/`)
        );
      t.true(argv.includes('--tls-ca-file'), line);
      if (argv.includes('reply-with')) {
        // Runs until stopped: the RequestMany line after it needs a responder.
        responders.push(spawn(argv[0] as string, argv.slice(1), { stdio: 'ignore' }));
        continue;
      }
      let result: Exit | undefined;
      // The node may still be starting: retry while it is unavailable (exit 3).
      const answered = async (): Promise<boolean> => {
        result = await run(
          spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] }),
          20_000
        );
        return result.code !== 3;
      };
      await waitFor('the node to answer the CLI', answered, 60_000).catch(() => undefined);
      t.is(result?.code, 0, `${line}\n${result?.out ?? ''}`);
      if (argv.includes('--replies')) {
        // one reply, from the responder above: payload "pong" (base64 in the JSON line)
        t.regex(result?.out ?? '', /"payload":"cG9uZw=="/, line);
        t.regex(result?.out ?? '', /meshwire: 1 reply/, line);
      }
    }
  } finally {
    for (const r of responders) r.kill();
    const exit = await pod.stop();
    t.is(exit.code, 0, exit.out);
  }
});

test('tls.spiffe.csi (values-spiffe.yaml): the node serves the SVID files spiffe-helper writes, the helm test driver passes with the SVID paths of the test pod, and a renewed SVID is served without a restart', async t => {
  const svidDir = (mounts: Record<string, string>): string => mounts['/etc/meshwire/tls'] as string;
  // Plays spiffe-helper: SVID, key and trust bundle, written where the chart points the node.
  const writeSvid = (dir: string, certs: ReturnType<typeof makeCerts>): void => {
    writeFileSync(join(dir, 'svid_bundle.pem'), certs['ca.crt']);
    writeFileSync(join(dir, 'svid_key.pem'), certs['tls.key']);
    writeFileSync(join(dir, 'svid.pem'), certs['tls.crt']);
  };
  const first = makeCerts(['mw-meshwire.prod.svc.cluster.local']);
  const pod = await startPod(['values-spiffe.yaml'], {}, false, mounts =>
    writeSvid(svidDir(mounts), first)
  );
  // The test pod's own SVID files, at the paths the rendered test pod names.
  const testPod = find(pod.objects, 'Pod', 'mw-meshwire-test');
  const testEnv = Object.fromEntries(
    (testPod.spec.containers[0].env as K8sObject[]).map(e => [e.name as string, String(e.value)])
  );
  const clientDir = join(pod.root, 'test-pod-svid');
  mkdirSync(clientDir);
  const driverEnv = (): Record<string, string> => ({
    TEST_TOKEN_FILE: testTokenFile(pod),
    TEST_TLS_CA_FILE: (testEnv.TEST_TLS_CA_FILE as string).replace('/etc/meshwire/tls', clientDir),
    TEST_TLS_CERT_FILE: (testEnv.TEST_TLS_CERT_FILE as string).replace(
      '/etc/meshwire/tls',
      clientDir
    ),
    TEST_TLS_KEY_FILE: (testEnv.TEST_TLS_KEY_FILE as string).replace(
      '/etc/meshwire/tls',
      clientDir
    ),
  });
  try {
    writeSvid(clientDir, first);
    const result = await runDriver(pod, driverEnv());
    t.is(result.code, 0, result.out);
    t.regex(result.out, /received round-trip-[0-9a-f]+ on 127\.0\.0\.1: OK/);

    // A renewal from another CA: the driver trusts only the new bundle, so it passes only
    // once the node serves the new SVID (and trusts the new bundle for the client's).
    const renewed = makeCerts(['mw-meshwire.prod.svc.cluster.local']);
    writeSvid(svidDir(pod.mounts), renewed);
    writeSvid(clientDir, renewed);
    const again = await runDriver(pod, driverEnv());
    t.is(again.code, 0, again.out);
  } finally {
    const exit = await pod.stop();
    t.is(exit.code, 0, exit.out);
  }
});
