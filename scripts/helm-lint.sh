#!/usr/bin/env bash
# helm-lint.sh HELM: lint and render the chart in helm/meshwire with every value set of
# test/fixtures/helm, and check that every invalid value set is rejected.
#   values-*.yaml   must lint and render;
#   invalid-*.yaml  must FAIL to render, with the message in its "# expect: <regex>" line
#                   (so a template bug cannot pass for a schema rejection).
# Run by `make helm-lint` (part of `make test`), which fetches HELM first.
# Each valid set: helm lint --strict, helm template, helm install --dry-run=client (NOTES).
set -euo pipefail
cd "$(dirname "$0")/.."

HELM=${1:-.tools/helm}
CHART=helm/meshwire
# Value sets; HELM_LINT_FIXTURES points elsewhere (the script's own test uses it).
FIXTURES=${HELM_LINT_FIXTURES:-test/fixtures/helm}
RELEASE=meshwire-lint
NAMESPACE=meshwire-lint
if [[ ! -x $HELM ]]; then
  echo "helm-lint: no helm binary at $HELM (run: make $HELM)" >&2
  exit 1
fi
echo "helm-lint: $("$HELM" version --short)"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
failures=0
checks=0

fail() {
  echo "helm-lint: FAIL: $*" >&2
  failures=$((failures + 1))
}

# render NAME ARGS...: lint and template one value set; the manifests go to $out/NAME.yaml.
render() {
  local name=$1
  shift
  checks=$((checks + 1))
  if ! "$HELM" lint --strict "$CHART" --namespace "$NAMESPACE" "$@" >"$out/$name.lint" 2>&1; then
    cat "$out/$name.lint" >&2
    fail "helm lint ($name)"
    return
  fi
  if ! "$HELM" template "$RELEASE" "$CHART" --namespace "$NAMESPACE" "$@" >"$out/$name.yaml" 2>"$out/$name.err"; then
    cat "$out/$name.err" >&2
    fail "helm template ($name)"
    return
  fi
  # A client-side dry-run install also renders NOTES.txt, which `helm template` skips.
  if ! "$HELM" install "$RELEASE" "$CHART" --dry-run=client --namespace "$NAMESPACE" "$@" >"$out/$name.install" 2>&1 ||
    ! grep -q '^NOTES:' "$out/$name.install"; then
    cat "$out/$name.install" >&2
    fail "helm install --dry-run=client ($name)"
    return
  fi
  if ! grep -q '^kind: StatefulSet' "$out/$name.yaml"; then
    fail "helm template ($name) rendered no StatefulSet"
    return
  fi
  echo "helm-lint: ok      $name ($(grep -c '^kind:' "$out/$name.yaml") objects)"
}

render defaults
for f in "$FIXTURES"/values-*.yaml; do
  render "$(basename "$f" .yaml)" -f "$f"
done
# The same chart with a few --set overrides, as operators type them.
render set-overrides --set replicaCount=1 --set podDisruptionBudget.enabled=false \
  --set service.type=LoadBalancer --set otel.endpoint=http://otel-collector.observability:4317 \
  --set grafanaDashboard.enabled=true

shopt -s nullglob
invalid=("$FIXTURES"/invalid-*.yaml)
if [[ ${#invalid[@]} -eq 0 ]]; then
  fail "no invalid-*.yaml fixtures in $FIXTURES"
fi
for f in "${invalid[@]}"; do
  name=$(basename "$f" .yaml)
  checks=$((checks + 1))
  expect=$(sed -n 's/^# expect: //p' "$f" | head -1)
  if [[ -z $expect ]]; then
    fail "$name has no '# expect: <regex>' line"
    continue
  fi
  if "$HELM" template "$RELEASE" "$CHART" --namespace "$NAMESPACE" -f "$f" >/dev/null 2>"$out/$name.err"; then
    fail "$name was accepted; it must be rejected"
  elif ! grep -Eq -- "$expect" "$out/$name.err"; then
    cat "$out/$name.err" >&2
    fail "$name was rejected, but not with /$expect/"
  else
    echo "helm-lint: ok      $name rejected: $(grep -E -- "$expect" "$out/$name.err" | head -1 | sed 's/^[[:space:]-]*//')"
  fi
done

if [[ $failures -gt 0 ]]; then
  echo "helm-lint: $failures of $checks checks failed" >&2
  exit 1
fi
echo "helm-lint: all $checks checks passed"
