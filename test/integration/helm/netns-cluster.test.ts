/**
 * Three replicas of the rendered StatefulSet, each a real node process in its own network
 * namespace with its own IP and the chart's real ports (7400/7401/9464), resolving the
 * headless Service's pod records through a cluster-DNS stand-in (netns-cluster.ts). The
 * chart's `helm test` driver runs from a client namespace: health SERVING on every pod by
 * its DNS name, then a Send/Subscribe round trip through the image's CLI from pod 2 to a
 * subscriber on pod 0, which needs the nodes to have found each other through peerDns.
 * Then a SIGTERM to every pod must drain and exit 0.
 * Default values: auth and TLS on, the driver using the generated helm-test token and
 * verifying every pod by its DNS name against the generated CA.
 */
import test from 'ava';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { CHART, ROOT, find, render } from './chart-helpers';
import { startNetnsCluster } from './netns-cluster';

const DRIVER = join(CHART, 'files/helm-test.js');
const NS = 'prod';

test('3 pods in separate network namespaces find each other by headless DNS: health on every pod, a message from pod 2 to a subscriber on pod 0, drain on SIGTERM', async t => {
  const objects = render({ namespace: NS });
  const cluster = startNetnsCluster(objects, NS);
  t.teardown(() => cluster.stop());
  // What the test hook pod mounts: the helm-test token of the generated Secret.
  const tokenFile = join(cluster.root, 'helm-test-token');
  const auth = find(objects, 'Secret', 'mw-meshwire-auth');
  writeFileSync(tokenFile, Buffer.from(auth.data['test-token'] as string, 'base64'));
  const caFile = join(cluster.root, 'helm-test-ca.crt');
  const tls = find(objects, 'Secret', 'mw-meshwire-tls');
  writeFileSync(caFile, Buffer.from(tls.data['ca.crt'] as string, 'base64'));
  t.is(cluster.pods.length, 3);

  // Health on every pod by its DNS name, then across nodes (the nodes found each other
  // through peerDns): subscribe on pod 0, send on pod 2.
  const t0 = Date.now();
  const cross = await cluster.runClient(
    DRIVER,
    {
      TEST_APP_DIR: ROOT,
      TEST_NODES: cluster.pods.map(p => p.fqdn).join(','),
      TEST_GRPC_PORT: '7400',
      TEST_TIMEOUT_SECONDS: '80',
      TEST_TOKEN_FILE: tokenFile,
      TEST_TLS_CA_FILE: caFile,
    },
    110_000
  );
  if (cross.code !== 0) for (const pod of cluster.pods) t.log(`${pod.name}:\n${pod.output()}`);
  t.is(cross.code, 0, cross.out);
  t.regex(
    cross.out,
    new RegExp(
      `subscribed to \\S+ on ${cluster.pods[0]?.fqdn}; sending on ${cluster.pods[2]?.fqdn}`
    )
  );
  t.regex(cross.out, /received round-trip-[0-9a-f]+ on \S+: OK/);

  for (const pod of cluster.pods) t.true(cross.out.includes(`${pod.fqdn}: SERVING`), cross.out);
  t.log(`helm test driver: ${Date.now() - t0} ms`);

  const t1 = Date.now();
  for (const pod of cluster.pods) pod.proc.kill('SIGTERM');
  for (const pod of cluster.pods) {
    const exit = await pod.exited;
    t.is(exit.code, 0, pod.output());
    t.true(pod.output().includes(`"node_id":"${pod.name}"`));
    t.regex(pod.output(), /draining/);
  }
  t.log(`drain and exit: ${Date.now() - t1} ms`);
});
