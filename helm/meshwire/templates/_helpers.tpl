{{/* Chart name, possibly overridden. */}}
{{- define "meshwire.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Full name: the prefix of every resource and of the pod names (the node ids). Kept to 52
characters so that "<fullname>-headless" and the StatefulSet's controller-revision label
stay within Kubernetes' 63-character limits.
*/}}
{{- define "meshwire.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "meshwire.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select the node pods. */}}
{{- define "meshwire.selectorLabels" -}}
app.kubernetes.io/name: {{ include "meshwire.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: node
{{- end -}}

{{/* Common labels of every resource. */}}
{{- define "meshwire.labels" -}}
helm.sh/chart: {{ include "meshwire.chart" . }}
app.kubernetes.io/name: {{ include "meshwire.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: meshwire
{{- end -}}

{{- define "meshwire.headlessName" -}}
{{- printf "%s-headless" (include "meshwire.fullname" .) -}}
{{- end -}}

{{- define "meshwire.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "meshwire.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "meshwire.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "meshwire.clusterSecretName" -}}
{{- default (printf "%s-cluster" (include "meshwire.fullname" .)) .Values.clusterSecret.existingSecret -}}
{{- end -}}

{{- define "meshwire.authSecretName" -}}
{{- default (printf "%s-auth" (include "meshwire.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{/*
Peer DNS template (peerDns): {id} and {namespace} are expanded by the node. It names the
pod's record under the headless Service, <pod>.<service>.<namespace>.svc.<domain>, which
Kubernetes publishes for a StatefulSet whose serviceName is that Service.
*/}}
{{- define "meshwire.peerDns" -}}
{{- printf "{id}.%s.{namespace}.svc.%s" (include "meshwire.headlessName" .) .Values.clusterDomain -}}
{{- end -}}

{{/* Node ids of the StatefulSet: the pod names <fullname>-0 .. <fullname>-(n-1). */}}
{{- define "meshwire.peerIds" -}}
{{- $full := include "meshwire.fullname" . -}}
{{- $ids := list -}}
{{- range $i := until (int .Values.replicaCount) -}}
{{- $ids = append $ids (printf "%s-%d" $full $i) -}}
{{- end -}}
{{- join "," $ids -}}
{{- end -}}

{{/* OTLP endpoint: explicit, else the chart's Jaeger when enabled, else empty. */}}
{{- define "meshwire.otlpEndpoint" -}}
{{- if .Values.otel.endpoint -}}
{{- .Values.otel.endpoint -}}
{{- else if .Values.jaeger.enabled -}}
{{- printf "http://%s-jaeger.%s.svc.%s:4317" (include "meshwire.fullname" .) .Release.Namespace .Values.clusterDomain -}}
{{- end -}}
{{- end -}}

{{/* Seconds between SIGTERM and SIGKILL; fails when too short for the drain. */}}
{{- define "meshwire.terminationGracePeriodSeconds" -}}
{{- $drain := div (add (int .Values.node.drainTimeoutMs) 999) 1000 -}}
{{- $floor := add $drain (int .Values.preStop.sleepSeconds) -}}
{{- $explicit := int .Values.terminationGracePeriodSeconds -}}
{{- if eq $explicit 0 -}}
{{- add $floor 10 -}}
{{- else if le $explicit $floor -}}
{{- fail (printf "terminationGracePeriodSeconds=%d must be larger than preStop.sleepSeconds + drainTimeoutMs/1000 = %d, or a rolling restart kills nodes before they drain" $explicit $floor) -}}
{{- else -}}
{{- $explicit -}}
{{- end -}}
{{- end -}}

{{/* Mount paths inside the node container. */}}
{{- define "meshwire.paths" -}}
config: /etc/meshwire/config
cluster: /etc/meshwire/cluster
tls: /etc/meshwire/tls
auth: /etc/meshwire/auth
{{- end -}}

{{/* listenAddress as the host part of host:port ("[::]" for IPv6). */}}
{{- define "meshwire.listenHost" -}}
{{- if contains ":" .Values.listenAddress -}}
{{- printf "[%s]" .Values.listenAddress -}}
{{- else -}}
{{- .Values.listenAddress -}}
{{- end -}}
{{- end -}}

{{/*
Where the gRPC certificate comes from: "spiffe" (tls.spiffe.csi.enabled: the SPIFFE
Workload API through spiffe-helper), "existing" (tls.existingSecret), "certManager"
(tls.certManager.enabled) or "generated" (by this chart, kept across upgrades). Fails on
a combination of sources.
*/}}
{{- define "meshwire.tlsSource" -}}
{{- if .Values.tls.spiffe.csi.enabled -}}
{{- if .Values.tls.existingSecret -}}
{{- fail "tls.spiffe.csi.enabled and tls.existingSecret are two sources for the nodes' certificate: unset one" -}}
{{- else if .Values.tls.certManager.enabled -}}
{{- fail "tls.spiffe.csi.enabled and tls.certManager.enabled are two sources for the nodes' certificate: unset one (for cert-manager's SPIFFE CSI driver, see docs/deploy.md)" -}}
{{- end -}}
spiffe
{{- else if .Values.tls.existingSecret -}}
existing
{{- else if .Values.tls.certManager.enabled -}}
certManager
{{- else -}}
generated
{{- end -}}
{{- end -}}

{{- define "meshwire.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "meshwire.fullname" .)) .Values.tls.existingSecret -}}
{{- end -}}

{{/*
"true" when the TLS Secret is known to hold the CA (caKey): the chart's own CA, or mTLS
(which needs it). The node container then mounts it too, for `kubectl exec` clients.
*/}}
{{- define "meshwire.tlsHasCa" -}}
{{- $src := include "meshwire.tlsSource" . -}}
{{- if or .Values.tls.clientAuth (eq $src "generated") (eq $src "spiffe") (and (eq $src "certManager") (not .Values.tls.certManager.issuerRef.name)) -}}
true
{{- end -}}
{{- end -}}

{{/*
File names in the TLS mount (paths.tls): the Secret's keys, or the files spiffe-helper
writes (the SVID, its key and the trust bundle).
*/}}
{{- define "meshwire.tlsFiles" -}}
{{- if eq (include "meshwire.tlsSource" .) "spiffe" -}}
cert: svid.pem
key: svid_key.pem
ca: svid_bundle.pem
{{- else -}}
cert: {{ .Values.tls.certKey }}
key: {{ .Values.tls.keyKey }}
ca: {{ .Values.tls.caKey }}
{{- end -}}
{{- end -}}

{{/*
A spiffe-helper container writing the SVID files to the volume "spiffe-svid". Called with
(dict "root" $ "name" <container name> "daemon" <bool>): daemon false fetches once and
exits (the init container), true keeps the files renewed (the sidecar).
*/}}
{{- define "meshwire.spiffeHelperContainer" -}}
{{- $v := .root.Values.tls.spiffe.helper -}}
- name: {{ .name }}
  image: {{ printf "%s:%s" $v.image.repository $v.image.tag | quote }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  args: ["-config", "/etc/spiffe-helper/helper.conf", "-daemon-mode={{ .daemon }}"]
  securityContext:
    {{- toYaml .root.Values.securityContext | nindent 4 }}
  resources:
    {{- toYaml $v.resources | nindent 4 }}
  volumeMounts:
    - name: spiffe-workload-api
      mountPath: /spiffe-workload-api
      readOnly: true
    - name: spiffe-helper-config
      mountPath: /etc/spiffe-helper
      readOnly: true
    - name: spiffe-svid
      mountPath: /svid
{{- end -}}

{{/* The volumes of the spiffe-helper containers ("spiffe-svid" is also the node's TLS mount). */}}
{{- define "meshwire.spiffeVolumes" -}}
- name: spiffe-workload-api
  csi:
    driver: {{ .Values.tls.spiffe.csi.driver }}
    readOnly: true
- name: spiffe-helper-config
  configMap:
    name: {{ include "meshwire.fullname" . }}-spiffe-helper
- name: spiffe-svid
  # In memory: the private key never touches the node's disk.
  emptyDir:
    medium: Memory
    sizeLimit: 1Mi
{{- end -}}

{{/* Names the gRPC server certificate holds: the client Service, every pod, loopback. */}}
{{- define "meshwire.tlsDnsNames" -}}
{{- $full := include "meshwire.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $domain := .Values.clusterDomain -}}
{{- $headless := include "meshwire.headlessName" . -}}
{{- $names := list $full (printf "%s.%s" $full $ns) (printf "%s.%s.svc" $full $ns) (printf "%s.%s.svc.%s" $full $ns $domain) (printf "*.%s.%s.svc.%s" $headless $ns $domain) (printf "%s.%s.svc.%s" $headless $ns $domain) "localhost" -}}
{{- toYaml $names -}}
{{- end -}}

{{/* The node's config file (MESHWIRE_CONFIG), keys of docs/design.md, "Configuration". */}}
{{- define "meshwire.nodeConfig" -}}
{{- $paths := include "meshwire.paths" . | fromYaml -}}
{{- $host := include "meshwire.listenHost" . -}}
{{- $cfg := dict
  "grpcListen" (printf "%s:%d" $host (int .Values.ports.grpc))
  "peerListen" (printf "%s:%d" $host (int .Values.ports.peer))
  "metricsListen" (printf "%s:%d" $host (int .Values.ports.metrics))
  "peerDns" (include "meshwire.peerDns" .)
  "peerIds" (include "meshwire.peerIds" .)
  "drainTimeoutMs" (int .Values.node.drainTimeoutMs)
  "maxMessageBytes" (int .Values.node.maxMessageBytes)
  "logLevel" .Values.node.logLevel
  "addressTargets" .Values.node.addressTargets.enabled
  "maxAddressSenders" (int .Values.node.addressTargets.maxSenders)
  "addressSenderIdleMs" (int .Values.node.addressTargets.idleTimeoutMs)
  "addressTargetCidrs" .Values.node.addressTargets.allowedCidrs
  "idempotencyWindowMs" (int .Values.node.idempotency.windowMs)
  "idempotencyMaxKeys" (int .Values.node.idempotency.maxKeys)
-}}
{{- if .Values.clusterSecret.directory -}}
{{- $_ := set $cfg "clusterSecretDir" $paths.cluster -}}
{{- else -}}
{{- $_ := set $cfg "clusterSecretFile" (printf "%s/%s" $paths.cluster .Values.clusterSecret.key) -}}
{{- end -}}
{{- if .Values.tls.enabled -}}
{{- $files := include "meshwire.tlsFiles" . | fromYaml -}}
{{- $_ := set $cfg "tlsCertFile" (printf "%s/%s" $paths.tls $files.cert) -}}
{{- $_ := set $cfg "tlsKeyFile" (printf "%s/%s" $paths.tls $files.key) -}}
{{- if .Values.tls.clientAuth -}}
{{- $_ := set $cfg "tlsClientCaFile" (printf "%s/%s" $paths.tls $files.ca) -}}
{{- end -}}
{{- end -}}
{{- if .Values.auth.enabled -}}
{{- $_ := set $cfg "authTokensFile" (printf "%s/%s" $paths.auth .Values.auth.key) -}}
{{- end -}}
{{- toYaml (mergeOverwrite $cfg .Values.node.extraConfig) -}}
{{- end -}}
