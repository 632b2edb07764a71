/**
 * Helpers for the chart tests: render helm/meshwire with the real helm binary
 * (.tools/helm, fetched by `make helm-lint`), parse the manifests with `yaml`, and play
 * the kubelet for one pod: write its mounted ConfigMaps and Secrets to a temporary root
 * and compute its environment, so that the node's real config loader can read them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

/** Repository root (this file runs from dist/test/integration/helm). */
export const ROOT = resolve(__dirname, '../../../..');
export const CHART = join(ROOT, 'helm/meshwire');
export const FIXTURES = join(ROOT, 'test/fixtures/helm');
export const HELM = join(ROOT, '.tools/helm');

/** A Kubernetes object as parsed from YAML; shapes are checked by the assertions. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- manifests are untyped YAML
export type K8sObject = Record<string, any>;

export interface HelmResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs helm; throws a clear error when the binary has not been fetched. */
export function helm(args: string[]): HelmResult {
  if (!existsSync(HELM)) {
    throw new Error(
      `no helm binary at ${HELM}: run \`make helm-lint\` (or \`make .tools/helm\`) first`
    );
  }
  const r = spawnSync(HELM, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface RenderOptions {
  release?: string;
  namespace?: string;
  /** Fixture file names in test/fixtures/helm. */
  valuesFiles?: string[];
  /** --set expressions. */
  set?: string[];
}

/** `helm template` args for a render. */
export function templateArgs(opts: RenderOptions = {}): string[] {
  const args = ['template', opts.release ?? 'mw', CHART, '--namespace', opts.namespace ?? 'prod'];
  for (const f of opts.valuesFiles ?? []) args.push('-f', join(FIXTURES, f));
  for (const s of opts.set ?? []) args.push('--set', s);
  return args;
}

const renders = new Map<string, K8sObject[]>();

/**
 * Renders the chart and parses every manifest. Renders are cached per argument list (a
 * test file renders the defaults many times); callers must not modify the objects.
 */
export function render(opts: RenderOptions = {}): K8sObject[] {
  const args = templateArgs(opts);
  const key = JSON.stringify(args);
  const cached = renders.get(key);
  if (cached) return cached;
  const r = helm(args);
  if (r.status !== 0) throw new Error(`helm template failed (${r.status}): ${r.stderr}`);
  const objects: K8sObject[] = [];
  for (const doc of parseAllDocuments(r.stdout)) {
    if (doc.errors.length > 0) throw new Error(`bad YAML from helm: ${doc.errors[0]?.message}`);
    const obj = doc.toJS() as K8sObject | null;
    if (obj) objects.push(obj);
  }
  renders.set(key, objects);
  return objects;
}

export function find(objects: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.filter(
    o => o.kind === kind && (name === undefined || o.metadata?.name === name)
  );
  if (found.length !== 1) {
    throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  }
  return found[0] as K8sObject;
}

export function findAll(objects: K8sObject[], kind: string): K8sObject[] {
  return objects.filter(o => o.kind === kind);
}

/** The StatefulSet's node container. */
export function nodeContainer(sts: K8sObject): K8sObject {
  const c = (sts.spec.template.spec.containers as K8sObject[]).find(x => x.name === 'meshwire');
  if (!c) throw new Error('no meshwire container');
  return c;
}

export interface PodView {
  podName: string;
  /** The container environment as the kubelet would set it (paths under `root`). */
  env: Record<string, string>;
  /** Mount path -> where it was materialized. */
  mounts: Record<string, string>;
}

/**
 * Plays the kubelet for replica `ordinal`: writes every mounted ConfigMap and Secret
 * volume under `root` (Secrets not rendered by the chart, i.e. existingSecret, get
 * placeholder files unless `external` has them), resolves downward-API env and $(VAR)
 * references, and rewrites the mount paths in env values and ConfigMap files to their
 * place under `root`.
 */
export function materializePod(
  objects: K8sObject[],
  ordinal: number,
  namespace: string,
  root: string,
  k8sNode = 'worker-1',
  /** Content of Secrets the chart does not render (existingSecret): name -> key -> text. */
  external: Record<string, Record<string, string>> = {}
): PodView {
  const sts = find(objects, 'StatefulSet');
  const podName = `${sts.metadata.name as string}-${ordinal}`;
  const spec = sts.spec.template.spec as K8sObject;
  const container = nodeContainer(sts);
  const volumes = new Map<string, K8sObject>((spec.volumes as K8sObject[]).map(v => [v.name, v]));
  const mounts: Record<string, string> = {};
  for (const m of container.volumeMounts as K8sObject[])
    mounts[m.mountPath] = join(root, m.mountPath);
  // One pass, longest mount path first, and only where a path starts: a rewritten path
  // (itself under /tmp) is never rewritten again by the /tmp mount.
  const escaped = Object.keys(mounts)
    .sort((a, b) => b.length - a.length)
    .map(p => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const pathRe = new RegExp(`(^|[\\s'":=,])(${escaped.join('|')})(?=/|$|[\\s'",])`, 'gm');
  const rewrite = (text: string): string =>
    text.replace(pathRe, (_m, lead: string, path: string) => lead + (mounts[path] as string));

  for (const m of container.volumeMounts as K8sObject[]) {
    const vol = volumes.get(m.name);
    if (!vol) throw new Error(`volumeMount ${m.name} has no volume`);
    const dir = mounts[m.mountPath] as string;
    mkdirSync(dir, { recursive: true });
    let files: Record<string, string> = {};
    if (vol.configMap) {
      const cm = find(objects, 'ConfigMap', vol.configMap.name);
      for (const [k, v] of Object.entries(cm.data as Record<string, string>)) files[k] = rewrite(v);
    } else if (vol.secret) {
      const secret = objects.find(
        o => o.kind === 'Secret' && o.metadata.name === vol.secret.secretName
      );
      const data: Record<string, string> = { ...external[vol.secret.secretName as string] };
      if (secret) {
        for (const [k, v] of Object.entries(secret.data as Record<string, string>)) {
          data[k] = Buffer.from(v, 'base64').toString('utf8');
        }
      }
      const items =
        (vol.secret.items as K8sObject[] | undefined) ??
        Object.keys(data).map(k => ({ key: k, path: k }));
      for (const item of items) {
        // An existingSecret is the operator's: stand in a placeholder for its content.
        files[item.path] =
          data[item.key] ?? `placeholder for ${vol.secret.secretName}/${item.key}\n`;
      }
    } else if (vol.emptyDir) {
      files = {};
    } else {
      throw new Error(`volume ${m.name}: unsupported kind`);
    }
    for (const [p, content] of Object.entries(files)) {
      const file = join(dir, p);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, content);
    }
  }

  const env: Record<string, string> = {};
  for (const e of container.env as K8sObject[]) {
    if (e.valueFrom) {
      const path = e.valueFrom.fieldRef?.fieldPath as string | undefined;
      const value =
        path === 'metadata.name'
          ? podName
          : path === 'metadata.namespace'
            ? namespace
            : path === 'spec.nodeName'
              ? k8sNode
              : undefined;
      if (value === undefined)
        throw new Error(`env ${e.name}: unsupported valueFrom ${JSON.stringify(e.valueFrom)}`);
      env[e.name] = value;
    } else {
      // Kubernetes expands $(VAR) for variables defined earlier in the list.
      const raw = String(e.value ?? '').replace(
        /\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g,
        (m, name: string) => (name in env ? (env[name] as string) : m)
      );
      env[e.name] = rewrite(raw);
    }
  }
  return { podName, env, mounts };
}
