/**
 * The Helm chart, rendered by the real helm binary and read back as Kubernetes objects:
 * names and ports agree between the StatefulSet, its Services and the peer DNS template;
 * probes, drain timing and the security context are what the issue asks; secrets are
 * mounted, never in env; and the config a pod gets is accepted by the node's real loader,
 * which then names the other replicas as its DNS peers.
 */
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { createClients } from '../../../src/api';
import { parseTokensFile } from '../../../src/api/auth';
import { clientSecurity } from '../../../src/api/auth-client';
import type { NodeApp } from '../../../src/app';
import { loadConfig, peerSeeds, startNode } from '../../../src/app';
import { readClusterSecrets } from '../../../src/app/cluster-secrets';
import { unary } from '../../helpers/node';
import { listenFlags } from '../../helpers/processes';
import { waitFor } from '../../helpers/wait';
import { makePki } from '../security/helpers';
import type { K8sObject } from './chart-helpers';
import {
  FIXTURES,
  find,
  findAll,
  helm,
  materializePod,
  nodeContainer,
  render,
  templateArgs,
} from './chart-helpers';

const NS = 'prod';
const FULL = 'mw-meshwire';
const HEADLESS = `${FULL}-headless`;

function tmpRoot(): string {
  return mkdtempSync(join(tmpdir(), 'meshwire-helm-'));
}

function portsByName(list: K8sObject[]): Record<string, { port: number; protocol: string }> {
  const out: Record<string, { port: number; protocol: string }> = {};
  for (const p of list)
    out[p.name] = { port: p.containerPort ?? p.port, protocol: p.protocol ?? 'TCP' };
  return out;
}

function nodeConfigFile(objects: K8sObject[]): Record<string, unknown> {
  const cm = find(objects, 'ConfigMap', `${FULL}-config`);
  return parseYaml(cm.data['config.yaml'] as string) as Record<string, unknown>;
}

test('defaults: StatefulSet, headless Service and peer DNS template agree on names and ports', t => {
  const objects = render();
  const sts = find(objects, 'StatefulSet', FULL);
  t.is(sts.spec.podManagementPolicy, 'Parallel');
  t.is(sts.spec.replicas, 3);
  t.is(sts.spec.serviceName, HEADLESS);

  const headless = find(objects, 'Service', HEADLESS);
  t.is(headless.spec.clusterIP, 'None');
  t.true(headless.spec.publishNotReadyAddresses);
  // Both Services select exactly the StatefulSet's pods.
  const podLabels = sts.spec.template.metadata.labels as Record<string, string>;
  t.deepEqual(headless.spec.selector, sts.spec.selector.matchLabels);
  for (const [k, v] of Object.entries(headless.spec.selector as Record<string, string>)) {
    t.is(podLabels[k], v, `pod label ${k}`);
  }

  const container = portsByName(nodeContainer(sts).ports);
  t.deepEqual(container, {
    grpc: { port: 7400, protocol: 'TCP' },
    peer: { port: 7401, protocol: 'UDP' },
    metrics: { port: 9464, protocol: 'TCP' },
  });
  for (const p of headless.spec.ports as K8sObject[]) {
    t.is(p.targetPort, p.name, `headless port ${p.name} targets the named container port`);
    t.deepEqual({ port: p.port, protocol: p.protocol }, container[p.name]);
  }

  const clients = find(objects, 'Service', FULL);
  t.is(clients.spec.type, 'ClusterIP');
  t.deepEqual(clients.spec.selector, headless.spec.selector);
  t.like(clients.spec.ports[0], { name: 'grpc', port: 7400, targetPort: 'grpc', protocol: 'TCP' });

  // The peer DNS template names the pod record Kubernetes publishes for a StatefulSet
  // pod under its serviceName: <pod>.<serviceName>.<namespace>.svc.<domain>.
  const cfg = nodeConfigFile(objects);
  t.is(cfg.peerDns, `{id}.${sts.spec.serviceName as string}.{namespace}.svc.cluster.local`);
  t.is(cfg.peerIds, `${FULL}-0,${FULL}-1,${FULL}-2`);
  t.is(cfg.peerListen, '0.0.0.0:7401');
  t.is(cfg.grpcListen, '0.0.0.0:7400');
  t.is(cfg.metricsListen, '0.0.0.0:9464');
});

test('defaults: TCP probes of the TLS gRPC port (native gRPC probes without TLS), and preStop plus grace period outlast the drain timeout', t => {
  const objects = render();
  const sts = find(objects, 'StatefulSet', FULL);
  const c = nodeContainer(sts);
  // The kubelet's gRPC probe cannot speak TLS, which is on by default.
  for (const probe of [c.readinessProbe, c.livenessProbe]) {
    t.deepEqual(probe.tcpSocket, { port: 'grpc' });
    t.true(probe.periodSeconds >= 1);
  }
  const plain = nodeContainer(find(render({ set: ['tls.enabled=false'] }), 'StatefulSet'));
  for (const probe of [plain.readinessProbe, plain.livenessProbe]) {
    t.deepEqual(probe.grpc, { port: 7400, service: '' });
  }
  const preStopSeconds = c.lifecycle.preStop.sleep.seconds as number;
  t.true(preStopSeconds > 0);
  const drainMs = nodeConfigFile(objects).drainTimeoutMs as number;
  t.is(drainMs, 10000);
  const grace = sts.spec.template.spec.terminationGracePeriodSeconds as number;
  t.true(grace * 1000 > preStopSeconds * 1000 + drainMs, `grace ${grace}s`);

  // A longer drain moves the grace period with it.
  const longer = find(render({ set: ['node.drainTimeoutMs=45000'] }), 'StatefulSet');
  t.true(
    longer.spec.template.spec.terminationGracePeriodSeconds * 1000 > preStopSeconds * 1000 + 45000
  );
});

test('defaults: pod and container security context are hardened, resources and PDB set', t => {
  const objects = render();
  const sts = find(objects, 'StatefulSet', FULL);
  const pod = sts.spec.template.spec;
  t.true(pod.securityContext.runAsNonRoot);
  t.not(pod.securityContext.runAsUser, 0);
  t.is(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
  t.false(pod.automountServiceAccountToken);
  // Service links would put MESHWIRE_SERVICE_HOST etc. (for a Service named meshwire)
  // into the node's MESHWIRE_* configuration namespace.
  t.false(pod.enableServiceLinks);
  const sc = nodeContainer(sts).securityContext;
  t.true(sc.runAsNonRoot);
  t.true(sc.readOnlyRootFilesystem);
  t.false(sc.allowPrivilegeEscalation);
  t.deepEqual(sc.capabilities.drop, ['ALL']);
  t.falsy(sc.privileged);
  const res = nodeContainer(sts).resources;
  t.truthy(res.requests.cpu);
  t.truthy(res.requests.memory);
  t.truthy(res.limits.memory);
  t.true((pod.topologySpreadConstraints as K8sObject[]).length >= 1);
  for (const c of pod.topologySpreadConstraints as K8sObject[]) {
    t.deepEqual(c.labelSelector.matchLabels, sts.spec.selector.matchLabels);
  }
  const pdb = find(objects, 'PodDisruptionBudget', FULL);
  t.deepEqual(pdb.spec.selector, sts.spec.selector);
  t.is(pdb.spec.maxUnavailable, 1);
});

test('defaults: the cluster secret is a mounted Secret file, never in env or the ConfigMap', t => {
  const objects = render();
  const sts = find(objects, 'StatefulSet', FULL);
  const secret = find(objects, 'Secret', `${FULL}-cluster`);
  const value = Buffer.from(secret.data['cluster-secret'] as string, 'base64').toString('utf8');
  t.true(value.length >= 32, 'a generated secret of at least 32 characters');
  const c = nodeContainer(sts);
  for (const e of c.env as K8sObject[]) {
    t.falsy(e.valueFrom?.secretKeyRef, `env ${e.name as string} reads a Secret`);
  }
  t.falsy(c.envFrom);
  const vol = (sts.spec.template.spec.volumes as K8sObject[]).find(
    v => v.secret?.secretName === secret.metadata.name
  );
  t.truthy(vol, 'the Secret is a volume');
  const mount = (c.volumeMounts as K8sObject[]).find(m => m.name === vol?.name);
  t.truthy(mount);
  t.true(mount?.readOnly);
  t.is(nodeConfigFile(objects).clusterSecretFile, `${mount?.mountPath as string}/cluster-secret`);
  // Neither the value nor its base64 appears outside the Secret.
  const elsewhere = JSON.stringify(objects.filter(o => o.kind !== 'Secret'));
  t.false(elsewhere.includes(value));
  t.false(elsewhere.includes(secret.data['cluster-secret'] as string));

  // With existingSecret (cluster secret, tokens, TLS: the GitOps way) the chart makes no
  // Secret, so nothing depends on a lookup, and mounts the operator's.
  const own = render({ valuesFiles: ['values-auth-existing.yaml'] });
  t.is(findAll(own, 'Secret').length, 0);
  const ownVols = find(own, 'StatefulSet').spec.template.spec.volumes as K8sObject[];
  t.truthy(ownVols.find(v => v.secret?.secretName === 'meshwire-cluster'));
  t.truthy(ownVols.find(v => v.secret?.secretName === 'meshwire-tokens'));
  t.truthy(ownVols.find(v => v.secret?.secretName === 'meshwire-tls'));
  t.is(nodeConfigFile(own).clusterSecretFile, '/etc/meshwire/cluster/secret');
});

test('replica 0 of 3: the real config loader accepts the rendered config and peers with replicas 1 and 2', t => {
  const objects = render();
  const root = tmpRoot();
  try {
    const pod = materializePod(objects, 0, NS, root);
    const cfg = loadConfig({ argv: [], env: pod.env });
    t.is(cfg.nodeId, `${FULL}-0`);
    t.is(cfg.namespace, NS);
    t.deepEqual(cfg.grpcListen, { host: '0.0.0.0', port: 7400 });
    t.deepEqual(cfg.peerListen, { host: '0.0.0.0', port: 7401 });
    t.deepEqual(cfg.metricsListen, { host: '0.0.0.0', port: 9464 });
    t.is(cfg.drainTimeoutMs, 10000);
    t.is(cfg.logLevel, 'info');
    t.deepEqual(
      peerSeeds(cfg).map(s => ({ ...s })),
      [1, 2].map(i => ({
        id: `${FULL}-${i}`,
        host: `${FULL}-${i}.${HEADLESS}.${NS}.svc.cluster.local`,
        port: 7401,
        source: 'dns' as const,
      }))
    );
    // The files the config names are the mounted Secrets.
    t.truthy(cfg.clusterSecretFile);
    const secret = find(objects, 'Secret', `${FULL}-cluster`);
    t.is(
      readFileSync(cfg.clusterSecretFile as string, 'utf8'),
      Buffer.from(secret.data['cluster-secret'] as string, 'base64').toString('utf8')
    );
    t.truthy(cfg.authTokensFile, 'auth is on by default in the chart');
    t.true(readFileSync(cfg.authTokensFile as string, 'utf8').includes('tokens:'));
    // TLS is on by default, from the chart-generated Secret.
    const tls = find(objects, 'Secret', `${FULL}-tls`);
    t.is(
      readFileSync(cfg.tlsCertFile as string, 'utf8'),
      Buffer.from(tls.data['tls.crt'] as string, 'base64').toString('utf8')
    );
    t.truthy(cfg.tlsKeyFile);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('node.extraConfig: transport keys (jumbo datagrams, AEAD backend, UDP driver) reach the real config loader', t => {
  const objects = render({
    set: [
      'node.extraConfig.maxDatagramSize=8972',
      'node.extraConfig.aeadBackend=node',
      'node.extraConfig.udpDriver=dgram',
    ],
  });
  const root = tmpRoot();
  try {
    const cfg = loadConfig({ argv: [], env: materializePod(objects, 0, NS, root).env });
    t.is(cfg.maxDatagramSize, 8972);
    t.is(cfg.aeadBackend, 'node');
    t.is(cfg.udpDriver, 'dgram');
    t.is(cfg.congestionControl, 'bbr', 'untouched keys keep their defaults');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('node.addressTargets: defaults and set values reach the real config loader', t => {
  const root = tmpRoot();
  try {
    const defaults = loadConfig({ argv: [], env: materializePod(render(), 0, NS, root).env });
    t.is(defaults.addressTargets, true);
    t.is(defaults.maxAddressSenders, 256);
    t.is(defaults.addressSenderIdleMs, 60000);
    t.deepEqual(
      defaults.addressTargetCidrs?.map(c => `${c.address}/${c.prefix}`),
      ['0.0.0.0/0', '::/0']
    );
    const objects = render({
      set: [
        'node.addressTargets.enabled=false',
        'node.addressTargets.maxSenders=16',
        'node.addressTargets.idleTimeoutMs=5000',
        'node.addressTargets.allowedCidrs={10.0.0.0/8,fd00::/8}',
      ],
    });
    const cfg = loadConfig({ argv: [], env: materializePod(objects, 0, NS, root).env });
    t.is(cfg.addressTargets, false);
    t.is(cfg.maxAddressSenders, 16);
    t.is(cfg.addressSenderIdleMs, 5000);
    t.deepEqual(
      cfg.addressTargetCidrs?.map(c => `${c.address}/${c.prefix}`),
      ['10.0.0.0/8', 'fd00::/8']
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('clusterSecret.directory: every key of the Secret is an accepted secret, mounted as clusterSecretDir; the key sorts first and sends', t => {
  const next = 'the-next-cluster-secret-2026';
  const objects = render({
    set: ['clusterSecret.directory=true', `clusterSecret.extraKeys.cluster-secret-next=${next}`],
  });
  const secret = find(objects, 'Secret', `${FULL}-cluster`);
  t.deepEqual(Object.keys(secret.data as object).sort(), ['cluster-secret', 'cluster-secret-next']);
  const vol = (find(objects, 'StatefulSet', FULL).spec.template.spec.volumes as K8sObject[]).find(
    v => v.secret?.secretName === secret.metadata.name
  );
  t.is(
    vol?.secret.items,
    undefined,
    'the whole Secret is mounted (Kubernetes updates it in place)'
  );
  const cfgFile = nodeConfigFile(objects);
  t.is(cfgFile.clusterSecretDir, '/etc/meshwire/cluster');
  t.is(cfgFile.clusterSecretFile, undefined);
  const root = tmpRoot();
  try {
    const pod = materializePod(objects, 0, NS, root);
    const cfg = loadConfig({ argv: [], env: pod.env });
    const generated = Buffer.from(secret.data['cluster-secret'] as string, 'base64').toString();
    t.deepEqual(readClusterSecrets(cfg)?.secrets.map(String), [generated, next]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  // an operator's Secret with current/next keys, mounted whole
  const own = render({
    valuesFiles: ['values-auth-existing.yaml'],
    set: ['clusterSecret.directory=true'],
  });
  t.is(findAll(own, 'Secret').length, 0);
  const root2 = tmpRoot();
  try {
    const pod = materializePod(own, 1, NS, root2, 'worker-1', {
      'meshwire-cluster': { current: 'B: the current secret', next: 'C: the next one, added' },
    });
    const cfg = loadConfig({ argv: [], env: pod.env });
    t.deepEqual(readClusterSecrets(cfg)?.secrets.map(String), [
      'B: the current secret',
      'C: the next one, added',
    ]);
  } finally {
    rmSync(root2, { recursive: true, force: true });
  }
  // a short extra key fails helm with the key named
  const r = helm(templateArgs({ set: ['clusterSecret.extraKeys.next=short'] }));
  t.not(r.status, 0);
  t.regex(r.stderr, /clusterSecret\/extraKeys\/next/);
});

test('node.idempotency: defaults and set values reach the real config loader; the schema refuses a window under 1 s', t => {
  const root = tmpRoot();
  try {
    const defaults = loadConfig({ argv: [], env: materializePod(render(), 0, NS, root).env });
    t.is(defaults.idempotencyWindowMs, 120000);
    t.is(defaults.idempotencyMaxKeys, 1000000);
    const objects = render({
      set: ['node.idempotency.windowMs=300000', 'node.idempotency.maxKeys=5000'],
    });
    const cfg = loadConfig({ argv: [], env: materializePod(objects, 0, NS, root).env });
    t.is(cfg.idempotencyWindowMs, 300000);
    t.is(cfg.idempotencyMaxKeys, 5000);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  const r = helm(templateArgs({ set: ['node.idempotency.windowMs=10'] }));
  t.not(r.status, 0);
  t.regex(r.stderr, /idempotency\/windowMs/);
});

test('node.addressTargets.allowedCidrs: a host name fails helm with the key named', t => {
  const r = helm(templateArgs({ set: ['node.addressTargets.allowedCidrs={example.com}'] }));
  t.not(r.status, 0);
  t.regex(r.stderr, /addressTargets\/allowedCidrs/);
});

test('5 replicas in another namespace: every node gets the four others, never itself', t => {
  const objects = render({
    valuesFiles: ['values-replicas-5.yaml'],
    namespace: 'edge',
    release: 'mesh',
  });
  const sts = find(objects, 'StatefulSet');
  t.is(sts.metadata.name, 'mesh-meshwire');
  t.is(sts.spec.replicas, 5);
  const ids = [0, 1, 2, 3, 4].map(i => `mesh-meshwire-${i}`);
  for (const ordinal of [0, 4]) {
    const root = tmpRoot();
    try {
      const cfg = loadConfig({ argv: [], env: materializePod(objects, ordinal, 'edge', root).env });
      const seeds = peerSeeds(cfg);
      t.deepEqual(
        seeds.map(s => s.id),
        ids.filter((_, i) => i !== ordinal)
      );
      for (const s of seeds) t.is(s.host, `${s.id}.mesh-meshwire-headless.edge.svc.cluster.local`);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
  const testPod = objects.find(
    o => o.kind === 'Pod' && o.metadata.annotations?.['helm.sh/hook'] === 'test'
  );
  const nodes = (testPod?.spec.containers[0].env as K8sObject[]).find(e => e.name === 'TEST_NODES');
  t.is((nodes?.value as string).split(',').length, 5);
});

test('TLS: certificate, key and CA are mounted and accepted by the loader; probes fall back to TCP', t => {
  const objects = render({ valuesFiles: ['values-tls.yaml'] });
  const sts = find(objects, 'StatefulSet');
  const c = nodeContainer(sts);
  const tlsVol = (sts.spec.template.spec.volumes as K8sObject[]).find(v => v.name === 'tls');
  t.is(tlsVol?.secret.secretName, 'meshwire-tls');
  t.deepEqual(c.readinessProbe.tcpSocket, { port: 'grpc' });
  t.deepEqual(c.livenessProbe.tcpSocket, { port: 'grpc' });
  const root = tmpRoot();
  try {
    const cfg = loadConfig({ argv: [], env: materializePod(objects, 1, NS, root).env });
    t.true(cfg.tlsCertFile?.endsWith('/etc/meshwire/tls/tls.crt'));
    t.true(cfg.tlsKeyFile?.endsWith('/etc/meshwire/tls/tls.key'));
    t.true(cfg.tlsClientCaFile?.endsWith('/etc/meshwire/tls/ca.crt'));
    t.deepEqual(
      peerSeeds(cfg).map(s => s.id),
      [`${FULL}-0`, `${FULL}-2`]
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('auth: on by default with a generated tokens Secret whose test token stays out of the nodes; off removes it', t => {
  const objects = render();
  const auth = find(objects, 'Secret', `${FULL}-auth`);
  t.truthy(auth.data['tokens.yaml']);
  t.truthy(auth.data['test-token']);
  const sts = find(objects, 'StatefulSet');
  const authVol = (sts.spec.template.spec.volumes as K8sObject[]).find(v => v.name === 'auth');
  t.deepEqual(authVol?.secret.items, [{ key: 'tokens.yaml', path: 'tokens.yaml' }]);
  t.is(nodeConfigFile(objects).authTokensFile, '/etc/meshwire/auth/tokens.yaml');
  // The generated tokens file holds the test token (so the helm test can authenticate).
  const tokens = Buffer.from(auth.data['tokens.yaml'] as string, 'base64').toString('utf8');
  t.true(
    tokens.includes(Buffer.from(auth.data['test-token'] as string, 'base64').toString('utf8'))
  );

  const off = render({ valuesFiles: ['values-auth-off.yaml'] });
  t.deepEqual(
    findAll(off, 'Secret')
      .map(s => s.metadata.name as string)
      .sort(),
    [`${FULL}-cluster`, `${FULL}-tls`],
    'only the cluster secret and the TLS certificate'
  );
  t.false('authTokensFile' in nodeConfigFile(off));
  const root = tmpRoot();
  try {
    const cfg = loadConfig({ argv: [], env: materializePod(off, 0, NS, root).env });
    t.is(cfg.authTokensFile, undefined);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('OpenTelemetry: resource attributes from the pod; jaeger.enabled points OTLP at the rendered Jaeger', t => {
  const plain = nodeContainer(find(render(), 'StatefulSet')).env as K8sObject[];
  t.false(
    plain.some(e => e.name === 'OTEL_EXPORTER_OTLP_ENDPOINT'),
    'no export unless asked'
  );

  const objects = render({ valuesFiles: ['values-jaeger.yaml'] });
  const root = tmpRoot();
  try {
    const env = materializePod(objects, 2, NS, root).env;
    t.is(env.OTEL_SERVICE_NAME, 'meshwire');
    const attrs = Object.fromEntries(
      (env.OTEL_RESOURCE_ATTRIBUTES as string).split(',').map(kv => kv.split('='))
    );
    t.like(attrs, {
      'k8s.pod.name': `${FULL}-2`,
      'k8s.namespace.name': NS,
      'k8s.node.name': 'worker-1',
      'service.instance.id': `${FULL}-2`,
      'deployment.environment': 'dev',
    });
    t.is(env.OTEL_TRACES_SAMPLER, 'parentbased_always_on');
    const endpoint = new URL(env.OTEL_EXPORTER_OTLP_ENDPOINT as string);
    t.is(env.OTEL_EXPORTER_OTLP_PROTOCOL, 'grpc');
    const svc = find(objects, 'Service', `${FULL}-jaeger`);
    t.is(endpoint.hostname, `${FULL}-jaeger.${NS}.svc.cluster.local`);
    const otlp = (svc.spec.ports as K8sObject[]).find(p => p.name === 'otlp-grpc');
    t.is(Number(endpoint.port), otlp?.port);
    const jaeger = find(objects, 'Deployment', `${FULL}-jaeger`);
    const ports = portsByName(jaeger.spec.template.spec.containers[0].ports);
    t.is(ports[otlp?.targetPort as string]?.port, 4317);
    t.deepEqual(svc.spec.selector, jaeger.spec.selector.matchLabels);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('NetworkPolicy: peer UDP only between meshwire pods, gRPC only from labelled clients', t => {
  const objects = render({ valuesFiles: ['values-networkpolicy.yaml'] });
  const sts = find(objects, 'StatefulSet');
  const np = find(objects, 'NetworkPolicy', FULL);
  t.deepEqual(np.spec.podSelector.matchLabels, sts.spec.selector.matchLabels);
  t.deepEqual(np.spec.policyTypes, ['Ingress']);
  const rules = np.spec.ingress as K8sObject[];
  const byPort = (port: number, protocol: string): K8sObject[] =>
    rules.filter(r =>
      (r.ports as K8sObject[]).some(p => p.port === port && p.protocol === protocol)
    );
  const udp = byPort(7401, 'UDP');
  t.is(udp.length, 1);
  t.deepEqual(udp[0]?.from, [{ podSelector: { matchLabels: sts.spec.selector.matchLabels } }]);
  const grpc = byPort(7400, 'TCP');
  t.is(grpc.length, 1);
  t.deepEqual(grpc[0]?.from[0].podSelector.matchLabels, { 'meshwire-client': 'true' });
  // The helm test pod matches one of the gRPC rule's selectors.
  const testPod = objects.find(
    o => o.kind === 'Pod' && o.metadata.annotations?.['helm.sh/hook'] === 'test'
  );
  const labels = testPod?.metadata.labels as Record<string, string>;
  t.true(
    (grpc[0]?.from as K8sObject[]).some(f =>
      Object.entries(f.podSelector.matchLabels as Record<string, string>).every(
        ([k, v]) => labels[k] === v
      )
    )
  );
  const metrics = byPort(9464, 'TCP');
  t.deepEqual(metrics[0]?.from, [
    { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
  ]);
  const sm = find(objects, 'ServiceMonitor', FULL);
  t.is(sm.spec.endpoints[0].port, 'metrics');
  const headless = find(objects, 'Service', HEADLESS);
  for (const [k, v] of Object.entries(sm.spec.selector.matchLabels as Record<string, string>)) {
    t.is(headless.metadata.labels[k], v, 'the ServiceMonitor selects the headless Service');
  }
});

test('helm test hook: health and round trip with the image CLI, token read from the Secret file', t => {
  const objects = render();
  const hooks = objects.filter(o => o.metadata.annotations?.['helm.sh/hook'] === 'test');
  t.deepEqual(hooks.map(o => o.kind).sort(), ['ConfigMap', 'Pod']);
  const pod = find(hooks, 'Pod');
  const c = pod.spec.containers[0];
  t.is(c.image, nodeContainer(find(objects, 'StatefulSet')).image);
  t.deepEqual(c.command, ['/nodejs/bin/node', '/etc/meshwire-test/helm-test.js']);
  const script = find(hooks, 'ConfigMap').data['helm-test.js'] as string;
  t.true(
    script.includes("'sub'") && script.includes("'send'") && script.includes('grpc-health-check')
  );
  const env = Object.fromEntries((c.env as K8sObject[]).map(e => [e.name, e.value]));
  t.is(
    env.TEST_NODES,
    [0, 1, 2].map(i => `${FULL}-${i}.${HEADLESS}.${NS}.svc.cluster.local`).join(',')
  );
  t.is(env.TEST_TOKEN_FILE, '/etc/meshwire-test-auth/token');
  t.falsy((c.env as K8sObject[]).find(e => e.valueFrom?.secretKeyRef));
  t.true(c.securityContext.readOnlyRootFilesystem);
});

test('schema: negative replicas, a bad port and an unknown key are rejected with the key named', t => {
  const cases: Array<[string[], RegExp]> = [
    [['--set', 'replicaCount=-1'], /replicaCount.*minimum/],
    [['--set', 'ports.grpc=70000'], /ports\/grpc.*maximum/],
    [['--set', 'ports.metrics=0'], /ports\/metrics.*minimum/],
    [['--set', 'replicas=3'], /additional properties 'replicas' not allowed/],
    [['--set', 'node.drainTimeout=5'], /additional properties 'drainTimeout' not allowed/],
    [['--set', 'node.logLevel=loud'], /node\/logLevel/],
    [['--set', 'securityContext.allowPrivilegeEscalation=true'], /allowPrivilegeEscalation/],
    [['-f', 'test/fixtures/helm/invalid-negative-replicas.yaml'], /replicaCount/],
    [['-f', 'test/fixtures/helm/invalid-port.yaml'], /ports\/peer/],
    [['-f', 'test/fixtures/helm/invalid-unknown-key.yaml'], /'replicas' not allowed/],
    [['--set', 'listenAddress=localhost'], /listenAddress/],
    [['--set', 'tls.clientAuth=true'], /tls\.clientAuth needs tls\.existingSecret/],
  ];
  for (const [args, re] of cases) {
    const fixed = args.map(a => (a.startsWith('test/') ? join(__dirname, '../../../..', a) : a));
    const r = helm([...templateArgs(), ...fixed]);
    t.not(r.status, 0, `${args.join(' ')} must be rejected`);
    t.regex(r.stderr, re, args.join(' '));
  }
  // And the defaults themselves pass the schema.
  t.is(helm(templateArgs()).status, 0);
});

function secretText(obj: K8sObject, key: string): string {
  return Buffer.from(obj.data[key] as string, 'base64').toString('utf8');
}

test('TLS on by default: a generated CA and server certificate for the Services, every pod and loopback; the node config and the helm test use them', t => {
  const objects = render();
  const tls = find(objects, 'Secret', `${FULL}-tls`);
  const ca = new X509Certificate(secretText(tls, 'ca.crt'));
  const cert = new X509Certificate(secretText(tls, 'tls.crt'));
  t.true(ca.ca, 'ca.crt is a CA');
  t.false(cert.ca);
  t.true(cert.verify(ca.publicKey), 'the server certificate is signed by the CA');
  t.true(cert.checkIssued(ca));
  for (const host of [
    `${FULL}.${NS}.svc.cluster.local`,
    `${FULL}.${NS}`,
    FULL,
    `${FULL}-0.${HEADLESS}.${NS}.svc.cluster.local`,
    `${FULL}-2.${HEADLESS}.${NS}.svc.cluster.local`,
    'localhost',
  ]) {
    t.truthy(cert.checkHost(host), `certificate names ${host}`);
  }
  t.is(cert.checkIP('127.0.0.1'), '127.0.0.1', 'port-forward and kubectl exec reach 127.0.0.1');
  t.is(cert.checkIP('::1'), '::1');
  t.is(cert.checkHost(`${FULL}.other.svc.cluster.local`), undefined);
  // The private key belongs to the certificate.
  t.true(secretText(tls, 'tls.key').includes('PRIVATE KEY'));

  const cfg = nodeConfigFile(objects);
  t.is(cfg.tlsCertFile, '/etc/meshwire/tls/tls.crt');
  t.is(cfg.tlsKeyFile, '/etc/meshwire/tls/tls.key');
  t.false('tlsClientCaFile' in cfg, 'no mTLS by default');
  const sts = find(objects, 'StatefulSet', FULL);
  const vol = (sts.spec.template.spec.volumes as K8sObject[]).find(v => v.name === 'tls');
  t.is(vol?.secret.secretName, `${FULL}-tls`);
  t.deepEqual(
    (vol?.secret.items as K8sObject[]).map(i => i.key),
    ['tls.crt', 'tls.key', 'ca.crt'],
    'the CA too, for kubectl exec clients'
  );
  // The kubelet's gRPC probe cannot speak TLS.
  t.deepEqual(nodeContainer(sts).readinessProbe.tcpSocket, { port: 'grpc' });

  const pod = objects.find(
    o => o.kind === 'Pod' && o.metadata.annotations?.['helm.sh/hook'] === 'test'
  ) as K8sObject;
  const env = Object.fromEntries(
    (pod.spec.containers[0].env as K8sObject[]).map(e => [e.name, e.value])
  );
  t.is(env.TEST_TLS_CA_FILE, '/etc/meshwire/tls/ca.crt');
  const testVol = (pod.spec.volumes as K8sObject[]).find(v => v.name === 'tls');
  t.is(testVol?.secret.secretName, `${FULL}-tls`);
  t.deepEqual(testVol?.secret.items, [{ key: 'ca.crt', path: 'ca.crt' }]);

  // Every render of a fresh install makes a new CA (an upgrade keeps the one in the cluster).
  const again = render({ release: 'mw', namespace: NS, set: ['replicaCount=3'] });
  t.not(find(again, 'Secret', `${FULL}-tls`).data['ca.crt'], tls.data['ca.crt']);
});

test('TLS sources: tls.existingSecret and cert-manager render no generated certificate; plaintext only when asked', t => {
  const existing = render({ set: ['tls.existingSecret=my-tls'] });
  t.false(findAll(existing, 'Secret').some(s => s.metadata.name === `${FULL}-tls`));
  t.is(findAll(existing, 'Certificate').length, 0);
  const vol = (find(existing, 'StatefulSet').spec.template.spec.volumes as K8sObject[]).find(
    v => v.name === 'tls'
  );
  t.is(vol?.secret.secretName, 'my-tls');
  t.deepEqual(
    (vol?.secret.items as K8sObject[]).map(i => i.key),
    ['tls.crt', 'tls.key'],
    'an existing Secret need not hold a CA unless mTLS is on'
  );
  t.is(nodeConfigFile(existing).tlsCertFile, '/etc/meshwire/tls/tls.crt');

  const cm = render({ valuesFiles: ['values-tls-certmanager.yaml'] });
  t.false(findAll(cm, 'Secret').some(s => s.metadata.name === `${FULL}-tls`));
  const certs = findAll(cm, 'Certificate');
  const server = find(certs, 'Certificate', `${FULL}-tls`);
  t.is(server.spec.secretName, `${FULL}-tls`);
  t.true((server.spec.dnsNames as string[]).includes(`*.${HEADLESS}.${NS}.svc.cluster.local`));
  t.deepEqual(server.spec.ipAddresses, ['127.0.0.1', '::1']);
  // No issuer given: the chart's self-signed CA chain signs it.
  const caCert = find(certs, 'Certificate', `${FULL}-ca`);
  t.true(caCert.spec.isCA);
  const caIssuer = find(findAll(cm, 'Issuer'), 'Issuer', server.spec.issuerRef.name);
  t.is(caIssuer.spec.ca.secretName, caCert.spec.secretName);
  t.is(caCert.spec.issuerRef.name, `${FULL}-selfsigned`);
  t.deepEqual(find(findAll(cm, 'Issuer'), 'Issuer', `${FULL}-selfsigned`).spec, {
    selfSigned: {},
  });
  const cmVol = (find(cm, 'StatefulSet').spec.template.spec.volumes as K8sObject[]).find(
    v => v.name === 'tls'
  );
  t.is(cmVol?.secret.secretName, server.spec.secretName);

  // Your own issuer: only the server Certificate.
  const own = render({
    set: [
      'tls.certManager.enabled=true',
      'tls.certManager.issuerRef.name=corp-ca',
      'tls.certManager.issuerRef.kind=ClusterIssuer',
    ],
  });
  t.is(findAll(own, 'Issuer').length, 0);
  t.deepEqual(find(own, 'Certificate').spec.issuerRef, {
    name: 'corp-ca',
    kind: 'ClusterIssuer',
    group: 'cert-manager.io',
  });

  const plain = render({ set: ['tls.enabled=false'] });
  t.false(findAll(plain, 'Secret').some(s => s.metadata.name === `${FULL}-tls`));
  t.false('tlsCertFile' in nodeConfigFile(plain));
  t.deepEqual(nodeContainer(find(plain, 'StatefulSet')).readinessProbe.grpc, {
    port: 7400,
    service: '',
  });
});

test('mTLS identities: cert-manager client Certificates with SPIFFE URIs, certificate entries in the generated tokens file that the real parser accepts', t => {
  const objects = render({ valuesFiles: ['values-mtls-identities.yaml'] });
  const server = find(objects, 'Certificate', `${FULL}-tls`);
  const orders = find(objects, 'Certificate', `${FULL}-client-orders`);
  t.deepEqual(orders.spec.uris, ['spiffe://cluster.local/ns/prod/sa/orders']);
  t.deepEqual(orders.spec.usages, ['client auth']);
  t.is(orders.spec.secretName, `${FULL}-client-orders`);
  t.is(orders.spec.commonName, 'orders');
  t.deepEqual(orders.spec.issuerRef, server.spec.issuerRef, 'signed by the CA the nodes trust');
  const billing = find(objects, 'Certificate', `${FULL}-client-billing`);
  t.is(billing.spec.commonName, 'billing-client');
  t.deepEqual(billing.spec.dnsNames, ['billing.prod.svc']);
  t.false('uris' in billing.spec);
  t.is(nodeConfigFile(objects).tlsClientCaFile, '/etc/meshwire/tls/ca.crt');
  const entries = parseTokensFile(
    secretText(find(objects, 'Secret', `${FULL}-auth`), 'tokens.yaml'),
    'rendered tokens file',
    { clientCertificatesVerified: true }
  );
  t.deepEqual(
    entries.map(e => [e.principal.name, e.principal.kind, e.certificate]),
    [
      ['admin', 'token', undefined],
      ['helm-test', 'token', undefined],
      [
        'orders',
        'certificate',
        { kind: 'spiffe', value: 'spiffe://cluster.local/ns/prod/sa/orders' },
      ],
      ['billing', 'certificate', { kind: 'cn', value: 'billing-client' }],
    ]
  );
  t.false(entries[2].principal.publish.checkTopic('orders.internal.x').ok);
  t.true(entries[2].principal.publish.checkTopic('orders.eu.created').ok);
  t.deepEqual(findAll(render(), 'Certificate'), [], 'none by default');

  const refused: Array<[string[], RegExp]> = [
    [
      [
        '--set',
        'auth.certificateIdentities[0].name=x',
        '--set',
        'auth.certificateIdentities[0].certificate.cn=x',
      ],
      /auth\.certificateIdentities needs tls\.enabled and tls\.clientAuth/,
    ],
    [
      ['-f', 'values-mtls-identities.yaml', '--set', 'auth.existingSecret=my-tokens'],
      /with auth\.existingSecret, write the certificate entries in your own tokens file/,
    ],
    [
      ['-f', 'values-mtls-identities.yaml', '--set', 'tls.clientAuth=false'],
      /needs tls\.enabled and tls\.clientAuth|needs tls\.clientAuth/,
    ],
    [
      [
        '--set',
        'tls.existingSecret=my-tls',
        '--set',
        'tls.clientAuth=true',
        '--set',
        'tls.certManager.clientCertificates[0].name=orders',
      ],
      /tls\.certManager\.clientCertificates needs tls\.enabled and tls\.certManager\.enabled/,
    ],
    [
      [
        '--set',
        'auth.certificateIdentities[0].name=x',
        '--set',
        'auth.certificateIdentities[0].certificate.spiffe=https://x',
      ],
      /certificateIdentities\/0\/certificate\/spiffe/,
    ],
  ];
  for (const [args, re] of refused) {
    const fixed = args.map(a => (a.endsWith('.yaml') && !a.includes('=') ? join(FIXTURES, a) : a));
    const r = helm([...templateArgs(), ...fixed]);
    t.not(r.status, 0, `${args.join(' ')} must be refused`);
    t.regex(r.stderr, re, args.join(' '));
  }
});

test('listenAddress "::" (IPv6-only clusters): every listen key binds [::] and the real loader accepts it', t => {
  const objects = render({ valuesFiles: ['values-tls-off-ipv6.yaml'] });
  const cfg = nodeConfigFile(objects);
  t.is(cfg.grpcListen, '[::]:7400');
  t.is(cfg.peerListen, '[::]:7401');
  t.is(cfg.metricsListen, '[::]:9464');
  const root = tmpRoot();
  try {
    const loaded = loadConfig({ argv: [], env: materializePod(objects, 0, NS, root).env });
    t.deepEqual(loaded.grpcListen, { host: '::', port: 7400 });
    t.deepEqual(loaded.peerListen, { host: '::', port: 7401 });
    t.deepEqual(loaded.metricsListen, { host: '::', port: 9464 });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

/** NOTES.txt as `helm install --dry-run=client` prints it (`helm template` skips it). */
function notes(args: string[], release = 'mw', namespace = NS): string {
  const r = helm([
    'install',
    release,
    join(__dirname, '../../../../helm/meshwire'),
    '--dry-run=client',
    '--namespace',
    namespace,
    ...args,
  ]);
  if (r.status !== 0) throw new Error(`helm install --dry-run failed: ${r.stderr}`);
  const i = r.stdout.indexOf('\nNOTES:\n');
  if (i < 0) throw new Error(`no NOTES in:\n${r.stdout}`);
  return r.stdout.slice(i + '\nNOTES:\n'.length);
}

test('NOTES: real names (no {id} or {namespace}), no npx, commands with TLS and the CA the chart mounts', t => {
  const text = notes([], 'edge', 'messaging');
  const full = 'edge-meshwire';
  t.notRegex(text, /\{[a-zA-Z_]+\}/, 'no unexpanded placeholders');
  t.false(text.includes('npx'), 'npx would fetch an unrelated package outside a checkout');
  t.true(text.includes(`${full}.messaging.svc.cluster.local:7400`), 'the client Service');
  t.true(text.includes(`port-forward svc/${full} 7400:7400`));
  t.true(text.includes(`${full}-0.${full}-headless.messaging.svc.cluster.local`));
  // kubectl exec into a real pod, with the CLI at its place in the image and the CA the
  // node container mounts.
  const exec = text.split('\n').find(l => l.includes('kubectl -n messaging exec'));
  t.truthy(exec);
  t.regex(
    exec ?? '',
    new RegExp(`exec ${full}-0 -- /nodejs/bin/node /app/dist/src/cli/main\\.js `)
  );
  t.regex(exec ?? '', / --tls-ca-file \/etc\/meshwire\/tls\/ca\.crt /);
  t.regex(exec ?? '', / --token "\$MESHWIRE_TOKEN"/);
  // RequestMany from the CLI, with the same flags.
  t.regex(
    text,
    /main\.js request orders\.status ping --replies all --stall 500 --server 127\.0\.0\.1:7400 --tls-ca-file /
  );
  const objects = render({ release: 'edge', namespace: 'messaging' });
  const sts = find(objects, 'StatefulSet', full);
  const mount = (nodeContainer(sts).volumeMounts as K8sObject[]).find(m => m.name === 'tls');
  t.is(mount?.mountPath, '/etc/meshwire/tls');
  // grpcurl and buf curl verify with the CA fetched from the real Secret name.
  t.true(text.includes(`get secret ${full}-tls -o jsonpath='{.data.ca\\.crt}'`));
  t.regex(text, /grpcurl -cacert ca\.crt -H "authorization: Bearer \$MESHWIRE_TOKEN"/);
  t.regex(text, /buf curl --protocol grpc --cacert ca\.crt .* https:\/\/127\.0\.0\.1:7400\//);
  t.true(text.includes(`get secret ${full}-auth -o jsonpath='{.data.admin-token}'`));

  // Plaintext when asked, still without placeholders or npx; GitOps advice only when
  // something is generated.
  const plain = notes(['--set', 'tls.enabled=false']);
  t.notRegex(plain, /\{[a-zA-Z_]+\}/);
  t.false(plain.includes('npx'));
  t.regex(plain, /grpcurl -plaintext/);
  t.false(plain.includes('--tls-ca-file'));
  const gitops = notes([
    '-f',
    join(__dirname, '../../../../test/fixtures/helm/values-auth-existing.yaml'),
  ]);
  t.false(gitops.includes('helm template'), 'nothing generated: no lookup caveat');
  t.true(text.includes('helm template'), 'generated secrets: the lookup caveat');
});

test('tls.spiffe.csi: the SPIFFE CSI volume, spiffe-helper (init container and sidecar, config from the chart) and the SVID files the node reads as its TLS files', t => {
  const objects = render({ valuesFiles: ['values-spiffe.yaml'] });
  const sts = find(objects, 'StatefulSet');
  const spec = sts.spec.template.spec as K8sObject;
  const volumes = new Map<string, K8sObject>((spec.volumes as K8sObject[]).map(v => [v.name, v]));
  t.deepEqual(volumes.get('spiffe-workload-api')?.csi, { driver: 'csi.spiffe.io', readOnly: true });
  t.deepEqual(volumes.get('spiffe-svid')?.emptyDir, { medium: 'Memory', sizeLimit: '1Mi' });
  t.is(volumes.get('spiffe-helper-config')?.configMap.name, `${FULL}-spiffe-helper`);
  t.false(volumes.has('tls'), 'no TLS Secret volume');
  t.false(findAll(objects, 'Secret').some(s => s.metadata.name === `${FULL}-tls`));
  t.is(findAll(objects, 'Certificate').length, 0);

  // The node reads the SVID files read-only and never sees the Workload API socket.
  const node = nodeContainer(sts);
  const nodeMounts = node.volumeMounts as K8sObject[];
  t.deepEqual(
    nodeMounts.find(m => m.name === 'spiffe-svid'),
    { name: 'spiffe-svid', mountPath: '/etc/meshwire/tls', readOnly: true }
  );
  t.false(nodeMounts.some(m => m.name === 'spiffe-workload-api'));

  // spiffe-helper: once before the node starts, then beside it; both write where the node reads.
  const init = (spec.initContainers as K8sObject[]).find(c => c.name === 'spiffe-helper-init');
  const sidecar = (spec.containers as K8sObject[]).find(c => c.name === 'spiffe-helper');
  for (const [c, daemon] of [
    [init, 'false'],
    [sidecar, 'true'],
  ] as const) {
    t.truthy(c, `spiffe-helper with daemon mode ${daemon}`);
    t.is(c?.image, 'ghcr.io/spiffe/spiffe-helper:0.10.0');
    t.deepEqual(c?.args, ['-config', '/etc/spiffe-helper/helper.conf', `-daemon-mode=${daemon}`]);
    const mounts = new Map<string, K8sObject>(
      (c?.volumeMounts as K8sObject[]).map(m => [m.name, m])
    );
    t.like(mounts.get('spiffe-workload-api'), {
      mountPath: '/spiffe-workload-api',
      readOnly: true,
    });
    t.like(mounts.get('spiffe-helper-config'), { mountPath: '/etc/spiffe-helper' });
    t.is(mounts.get('spiffe-svid')?.mountPath, '/svid');
    t.falsy(mounts.get('spiffe-svid')?.readOnly, 'spiffe-helper writes the files');
    t.true(c?.securityContext.readOnlyRootFilesystem);
  }
  t.truthy(sts.spec.template.metadata.annotations['checksum/spiffe-helper']);

  // helper.conf: the socket in the CSI mount, the files in the shared volume, named as the
  // node's config expects them.
  const conf = find(objects, 'ConfigMap', `${FULL}-spiffe-helper`).data['helper.conf'] as string;
  const setting = (key: string): string | undefined =>
    new RegExp(`^${key} = "(.*)"$`, 'm').exec(conf)?.[1];
  t.is(setting('agent_address'), '/spiffe-workload-api/spire-agent.sock');
  t.is(setting('cert_dir'), '/svid');
  t.regex(conf, /^daemon_mode = true$/m);
  const cfg = nodeConfigFile(objects);
  t.is(cfg.tlsCertFile, `/etc/meshwire/tls/${setting('svid_file_name')}`);
  t.is(cfg.tlsKeyFile, `/etc/meshwire/tls/${setting('svid_key_file_name')}`);
  t.is(cfg.tlsClientCaFile, `/etc/meshwire/tls/${setting('svid_bundle_file_name')}`);
  t.is(cfg.tlsCertFile, '/etc/meshwire/tls/svid.pem');

  // The helm test pod fetches its own SVID and verifies the nodes with the bundle.
  const testPod = find(objects, 'Pod', `${FULL}-test`);
  t.deepEqual(
    (testPod.spec.initContainers as K8sObject[]).map(c => [c.name, c.args[2]]),
    [['spiffe-helper-init', '-daemon-mode=false']]
  );
  const testEnv = Object.fromEntries(
    (testPod.spec.containers[0].env as K8sObject[]).map(e => [e.name, e.value])
  );
  t.is(testEnv.TEST_TLS_CA_FILE, '/etc/meshwire/tls/svid_bundle.pem');
  t.is(testEnv.TEST_TLS_CERT_FILE, '/etc/meshwire/tls/svid.pem');
  t.is(testEnv.TEST_TLS_KEY_FILE, '/etc/meshwire/tls/svid_key.pem');

  // Options: socket name, driver, image.
  const custom = render({
    valuesFiles: ['values-spiffe.yaml'],
    set: [
      'tls.spiffe.socketName=agent.sock',
      'tls.spiffe.csi.driver=csi.example.io',
      'tls.spiffe.helper.image.tag=0.9.1',
    ],
  });
  t.regex(
    find(custom, 'ConfigMap', `${FULL}-spiffe-helper`).data['helper.conf'] as string,
    /^agent_address = "\/spiffe-workload-api\/agent\.sock"$/m
  );
  const customSpec = find(custom, 'StatefulSet').spec.template.spec as K8sObject;
  t.is(
    (customSpec.volumes as K8sObject[]).find(v => v.name === 'spiffe-workload-api')?.csi.driver,
    'csi.example.io'
  );
  t.is(customSpec.initContainers[0].image, 'ghcr.io/spiffe/spiffe-helper:0.9.1');

  // NOTES: kubectl exec with the SVID files and a DNS name of the nodes' SVID (it names
  // no 127.0.0.1); no Secret to fetch a CA from.
  const text = notes(['-f', join(FIXTURES, 'values-spiffe.yaml')]);
  const exec = text.split('\n').find(l => l.includes(`exec ${FULL}-0`)) ?? '';
  t.regex(
    exec,
    / --tls-ca-file \/etc\/meshwire\/tls\/svid_bundle\.pem --tls-cert-file \/etc\/meshwire\/tls\/svid\.pem --tls-key-file \/etc\/meshwire\/tls\/svid_key\.pem --tls-server-name mw-meshwire\.prod\.svc\.cluster\.local /
  );
  t.regex(text, /SPIFFE X\.509-SVIDs/);
  t.false(text.includes(`get secret ${FULL}-tls`));

  // Off by default: nothing of it.
  const plain = render();
  t.false(findAll(plain, 'ConfigMap').some(c => c.metadata.name === `${FULL}-spiffe-helper`));
  const plainSpec = find(plain, 'StatefulSet').spec.template.spec as K8sObject;
  t.is(plainSpec.initContainers, undefined);
  t.deepEqual(
    (plainSpec.containers as K8sObject[]).map(c => c.name),
    ['meshwire']
  );
});

test('tls.spiffe.csi is refused with a second certificate source or without TLS', t => {
  const refused: Array<[string[], RegExp]> = [
    [
      ['tls.existingSecret=my-tls'],
      /tls\.spiffe\.csi\.enabled and tls\.existingSecret are two sources for the nodes' certificate: unset one/,
    ],
    [
      ['tls.certManager.enabled=true'],
      /tls\.spiffe\.csi\.enabled and tls\.certManager\.enabled are two sources for the nodes' certificate/,
    ],
    [['tls.enabled=false'], /tls\.spiffe\.csi\.enabled needs tls\.enabled/],
    [['tls.spiffe.helper.image.pullPolicy=Sometimes'], /tls\/spiffe\/helper\/image\/pullPolicy/],
  ];
  for (const [set, re] of refused) {
    const r = helm(templateArgs({ set: ['tls.spiffe.csi.enabled=true', ...set] }));
    t.not(r.status, 0, `${set.join(' ')} must be refused`);
    t.regex(r.stderr, re, set.join(' '));
  }
});

test('tls.spiffe.csi: the node starts on the rendered config with SVID files where spiffe-helper writes them, lets a SPIFFE identity in without a token, and reloads a renewed SVID', async t => {
  const objects = render({ valuesFiles: ['values-spiffe.yaml'] });
  const root = tmpRoot();
  const pki = makePki();
  const orders = pki.issue('orders', 'orders', false, [
    'URI:spiffe://cluster.local/ns/prod/sa/orders',
  ]);
  let node: NodeApp | undefined;
  try {
    const pod = materializePod(objects, 0, NS, root);
    // Play spiffe-helper: the SVID (with the names clients dial), its key and the bundle.
    const svidDir = pod.mounts['/etc/meshwire/tls'] as string;
    const writeSvid = (name: string): void => {
      const svid = pki.issue(name, name, true);
      copyFileSync(svid.cert, join(svidDir, 'svid.pem'));
      copyFileSync(svid.key, join(svidDir, 'svid_key.pem'));
      copyFileSync(pki.caCert, join(svidDir, 'svid_bundle.pem'));
    };
    writeSvid('svid-1');
    // The pod's config, on loopback ports and without the peers' DNS names.
    const cfg = loadConfig({ argv: listenFlags(0, 0, 0), env: pod.env });
    node = await startNode({
      config: { ...cfg, peerDns: undefined, peerIds: [] },
      reloadIntervalMs: 100,
    });
    const clients = createClients(
      node.grpcAddress,
      clientSecurity({ caFile: pki.caCert, certFile: orders.cert, keyFile: orders.key })
    );
    try {
      const ack = await unary<{ id: string }>(clients.messenger, 'Send', {
        message: { topic: 'orders.eu', payload: Buffer.from('x') },
      });
      t.truthy(ack.id, 'the SPIFFE ID of auth.certificateIdentities is let in without a token');
    } finally {
      clients.close();
    }
    writeSvid('svid-2');
    await waitFor('the renewed SVID to be applied', () => (node?.tls?.reloads ?? 0) >= 1, 30_000);
    t.is(node.tls?.failures, 0);
  } finally {
    await node?.shutdown();
    rmSync(root, { recursive: true, force: true });
  }
});
