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
Where the gRPC certificate comes from: "existing" (tls.existingSecret), "certManager"
(tls.certManager.enabled) or "generated" (by this chart, kept across upgrades).
*/}}
{{- define "meshwire.tlsSource" -}}
{{- if .Values.tls.existingSecret -}}
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
{{- if or .Values.tls.clientAuth (eq $src "generated") (and (eq $src "certManager") (not .Values.tls.certManager.issuerRef.name)) -}}
true
{{- end -}}
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
{{- $_ := set $cfg "tlsCertFile" (printf "%s/%s" $paths.tls .Values.tls.certKey) -}}
{{- $_ := set $cfg "tlsKeyFile" (printf "%s/%s" $paths.tls .Values.tls.keyKey) -}}
{{- if .Values.tls.clientAuth -}}
{{- $_ := set $cfg "tlsClientCaFile" (printf "%s/%s" $paths.tls .Values.tls.caKey) -}}
{{- end -}}
{{- end -}}
{{- if .Values.auth.enabled -}}
{{- $_ := set $cfg "authTokensFile" (printf "%s/%s" $paths.auth .Values.auth.key) -}}
{{- end -}}
{{- toYaml (mergeOverwrite $cfg .Values.node.extraConfig) -}}
{{- end -}}
