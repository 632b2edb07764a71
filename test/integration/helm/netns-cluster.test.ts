/**
 * Three replicas of the rendered StatefulSet, each a real node process in its own network
 * namespace with its own IP and the chart's real ports (7400/7401/9464), resolving the
 * headless Service's pod records through a cluster-DNS stand-in (netns-cluster.ts). The
 * chart's `helm test` driver runs from a client namespace against every pod by its DNS
 * name: health SERVING and a Send/Subscribe round trip through the image's CLI. Then a
 * SIGTERM to every pod must drain and exit 0.
 * Default values: auth on, the driver using the generated test token.
 */
import test from 'ava';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { CHART, ROOT, find, render } from './chart-helpers';
import { startNetnsCluster } from './netns-cluster';

const DRIVER = join(CHART, 'files/helm-test.js');
const NS = 'prod';

test('3 pods in separate network namespaces: each serves by its headless DNS name, passes the helm test driver, drains on SIGTERM', async t => {
  const objects = render({ namespace: NS });
  const cluster = startNetnsCluster(objects, NS);
  t.teardown(() => cluster.stop());
  const tokenFile = join(cluster.root, 'test-token');
  const auth = find(objects, 'Secret', 'mw-meshwire-auth');
  writeFileSync(tokenFile, Buffer.from(auth.data['test-token'] as string, 'base64'));
  t.is(cluster.pods.length, 3);

  const results = await Promise.all(
    cluster.pods.map(pod =>
      cluster.runClient(
        DRIVER,
        {
          TEST_APP_DIR: ROOT,
          TEST_NODES: pod.fqdn,
          TEST_GRPC_PORT: '7400',
          TEST_TIMEOUT_SECONDS: '45',
          TEST_TOKEN_FILE: tokenFile,
        },
        90_000
      )
    )
  );
  cluster.pods.forEach((pod, i) => {
    const r = results[i] as { code: number | null; out: string };
    if (r.code !== 0) t.log(`${pod.name} output:\n${pod.output()}`);
    t.is(r.code, 0, r.out);
    t.true(r.out.includes(`${pod.fqdn}: SERVING`), r.out);
    t.regex(r.out, /received round-trip-[0-9a-f]+ on \S+: OK/);
  });

  for (const pod of cluster.pods) pod.proc.kill('SIGTERM');
  for (const pod of cluster.pods) {
    const exit = await pod.exited;
    t.is(exit.code, 0, pod.output());
    t.true(pod.output().includes(`"node_id":"${pod.name}"`));
    t.regex(pod.output(), /draining/);
  }
});
