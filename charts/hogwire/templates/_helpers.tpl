{{/*
Chart name, shortened to fit the 63-character DNS label limit.
*/}}
{{- define "hogwire.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name prefix for every resource. Component suffixes such as "-controlplane"
(13 characters) are appended, so it is cut at 50 characters.
*/}}
{{- define "hogwire.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "hogwire.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels shared by every resource. Call with (dict "ctx" $ "component" "name").
*/}}
{{- define "hogwire.labels" -}}
helm.sh/chart: {{ include "hogwire.chart" .ctx }}
{{ include "hogwire.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: hogwire
{{- end }}

{{/*
Selector labels; they never change across upgrades because Deployment and
StatefulSet selectors are immutable.
*/}}
{{- define "hogwire.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hogwire.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{- define "hogwire.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "hogwire.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "hogwire.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "hogwire.secretName" -}}
{{- default (include "hogwire.fullname" .) .Values.auth.existingSecret }}
{{- end }}

{{- define "hogwire.controlplane.fullname" -}}
{{- printf "%s-controlplane" (include "hogwire.fullname" .) }}
{{- end }}

{{- define "hogwire.dataplane.fullname" -}}
{{- printf "%s-dataplane" (include "hogwire.fullname" .) }}
{{- end }}

{{- define "hogwire.etcd.fullname" -}}
{{- printf "%s-etcd" (include "hogwire.fullname" .) }}
{{- end }}

{{- define "hogwire.nats.fullname" -}}
{{- printf "%s-nats" (include "hogwire.fullname" .) }}
{{- end }}

{{/*
Comma-separated etcd client endpoints: the bundled StatefulSet's Service, or
the external list.
*/}}
{{- define "hogwire.etcdEndpoints" -}}
{{- if .Values.etcd.bundled.enabled }}
{{- printf "http://%s.%s.svc:2379" (include "hogwire.etcd.fullname" .) .Release.Namespace }}
{{- else if .Values.etcd.external.endpoints }}
{{- join "," .Values.etcd.external.endpoints }}
{{- else }}
{{- fail "etcd: set etcd.external.endpoints or enable etcd.bundled.enabled" }}
{{- end }}
{{- end }}

{{- define "hogwire.natsURL" -}}
{{- if .Values.nats.bundled.enabled }}
{{- printf "nats://%s.%s.svc:4222" (include "hogwire.nats.fullname" .) .Release.Namespace }}
{{- else if .Values.nats.external.url }}
{{- .Values.nats.external.url }}
{{- else }}
{{- fail "nats: set nats.external.url or enable nats.bundled.enabled" }}
{{- end }}
{{- end }}

{{- define "hogwire.controlplane.headless" -}}
{{- printf "%s-headless" (include "hogwire.controlplane.fullname" .) }}
{{- end }}

{{/*
Where data-plane nodes find the control plane: by default every replica,
through the headless Service's DNS name, so nodes balance over replicas and
fail over between them themselves instead of through one virtual IP.
*/}}
{{- define "hogwire.controlplaneAddr" -}}
{{- if .Values.dataplane.controlplaneAddr }}
{{- .Values.dataplane.controlplaneAddr }}
{{- else }}
{{- printf "dns:///%s.%s.svc:7070" (include "hogwire.controlplane.headless" .) .Release.Namespace }}
{{- end }}
{{- end }}

{{/*
Paths the secret material is mounted at. The flags in the ConfigMaps point
here, so the two never drift apart.
*/}}
{{- define "hogwire.tokensDir" -}}/etc/hogwire/tokens{{- end }}
{{- define "hogwire.secretsDir" -}}/etc/hogwire/secrets{{- end }}
{{- define "hogwire.grpcTLSDir" -}}/etc/hogwire/grpc-tls{{- end }}
{{- define "hogwire.etcdTLSDir" -}}/etc/hogwire/etcd-tls{{- end }}
{{- define "hogwire.etcdAuthDir" -}}/etc/hogwire/etcd-auth{{- end }}
{{- define "hogwire.natsTLSDir" -}}/etc/hogwire/nats-tls{{- end }}
{{- define "hogwire.natsAuthDir" -}}/etc/hogwire/nats-auth{{- end }}

{{/*
Store connection settings, as HOGWIRE_* variables for the ConfigMaps. They
apply to external stores only: the bundled ones run without TLS or auth,
behind NetworkPolicies.
*/}}
{{- define "hogwire.etcdSettings" -}}
{{- if not .Values.etcd.bundled.enabled }}
{{- $e := .Values.etcd.external }}
{{- if $e.tls.existingSecret }}
{{- if $e.tls.caKey }}
HOGWIRE_ETCD_CACERT: {{ printf "%s/ca.crt" (include "hogwire.etcdTLSDir" .) | quote }}
{{- end }}
{{- if $e.tls.certKey }}
HOGWIRE_ETCD_CERT: {{ printf "%s/tls.crt" (include "hogwire.etcdTLSDir" .) | quote }}
HOGWIRE_ETCD_KEY: {{ printf "%s/tls.key" (include "hogwire.etcdTLSDir" .) | quote }}
{{- end }}
{{- end }}
{{- with $e.tls.serverName }}
HOGWIRE_ETCD_SERVER_NAME: {{ . | quote }}
{{- end }}
{{- if $e.auth.username }}
HOGWIRE_ETCD_USER: {{ $e.auth.username | quote }}
HOGWIRE_ETCD_PASSWORD_FILE: {{ printf "%s/password" (include "hogwire.etcdAuthDir" .) | quote }}
{{- end }}
{{- end }}
{{- end }}

{{- define "hogwire.natsSettings" -}}
HOGWIRE_NATS_URL: {{ include "hogwire.natsURL" . | quote }}
{{- if .Values.nats.bundled.enabled }}
HOGWIRE_NATS_REPLICAS: "1"
{{- else }}
{{- $n := .Values.nats.external }}
HOGWIRE_NATS_REPLICAS: {{ $n.streamReplicas | quote }}
{{- if $n.tls.existingSecret }}
{{- if $n.tls.caKey }}
HOGWIRE_NATS_TLSCA: {{ printf "%s/ca.crt" (include "hogwire.natsTLSDir" .) | quote }}
{{- end }}
{{- if $n.tls.certKey }}
HOGWIRE_NATS_TLSCERT: {{ printf "%s/tls.crt" (include "hogwire.natsTLSDir" .) | quote }}
HOGWIRE_NATS_TLSKEY: {{ printf "%s/tls.key" (include "hogwire.natsTLSDir" .) | quote }}
{{- end }}
{{- end }}
{{- with $n.auth }}
{{- if .credsKey }}
HOGWIRE_NATS_CREDS: {{ printf "%s/user.creds" (include "hogwire.natsAuthDir" $) | quote }}
{{- else if .nkeyKey }}
HOGWIRE_NATS_NKEY: {{ printf "%s/user.nk" (include "hogwire.natsAuthDir" $) | quote }}
{{- else if .user }}
HOGWIRE_NATS_USER: {{ .user | quote }}
HOGWIRE_NATS_PASSWORD_FILE: {{ printf "%s/password" (include "hogwire.natsAuthDir" $) | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
A Secret volume that maps the user's key names to fixed file names. Call with
(dict "name" volume "secret" name "items" (list (list key path) ...)); items
with an empty key are left out.
*/}}
{{- define "hogwire.secretVolume" -}}
- name: {{ .name }}
  secret:
    secretName: {{ .secret }}
    # 0440 plus the pod fsGroup lets the non-root user read the files.
    defaultMode: 0440
    items:
      {{- range .items }}
      {{- if index . 0 }}
      - key: {{ index . 0 }}
        path: {{ index . 1 }}
      {{- end }}
      {{- end }}
{{- end }}

{{/*
Volumes and mounts for the external stores' TLS files and credentials.
Call with (dict "ctx" $ "etcd" bool): the data plane never gets etcd's.
*/}}
{{- define "hogwire.storeVolumes" -}}
{{- $v := .ctx.Values }}
{{- if and .etcd (not $v.etcd.bundled.enabled) }}
{{- with $v.etcd.external.tls }}{{ if .existingSecret }}
{{ include "hogwire.secretVolume" (dict "name" "etcd-tls" "secret" .existingSecret "items" (list (list .caKey "ca.crt") (list .certKey "tls.crt") (list (ternary .keyKey "" (ne .certKey "")) "tls.key"))) }}
{{- end }}{{ end }}
{{- with $v.etcd.external.auth }}{{ if .username }}
{{ include "hogwire.secretVolume" (dict "name" "etcd-auth" "secret" .existingSecret "items" (list (list .passwordKey "password"))) }}
{{- end }}{{ end }}
{{- end }}
{{- if not $v.nats.bundled.enabled }}
{{- with $v.nats.external.tls }}{{ if .existingSecret }}
{{ include "hogwire.secretVolume" (dict "name" "nats-tls" "secret" .existingSecret "items" (list (list .caKey "ca.crt") (list .certKey "tls.crt") (list (ternary .keyKey "" (ne .certKey "")) "tls.key"))) }}
{{- end }}{{ end }}
{{- with $v.nats.external.auth }}{{ if .existingSecret }}
{{ include "hogwire.secretVolume" (dict "name" "nats-auth" "secret" .existingSecret "items" (list (list .credsKey "user.creds") (list .nkeyKey "user.nk") (list .passwordKey "password"))) }}
{{- end }}{{ end }}
{{- end }}
{{- end }}

{{- define "hogwire.storeMounts" -}}
{{- $v := .ctx.Values }}
{{- if and .etcd (not $v.etcd.bundled.enabled) }}
{{- if $v.etcd.external.tls.existingSecret }}
- name: etcd-tls
  mountPath: {{ include "hogwire.etcdTLSDir" .ctx }}
  readOnly: true
{{- end }}
{{- if $v.etcd.external.auth.username }}
- name: etcd-auth
  mountPath: {{ include "hogwire.etcdAuthDir" .ctx }}
  readOnly: true
{{- end }}
{{- end }}
{{- if not $v.nats.bundled.enabled }}
{{- if $v.nats.external.tls.existingSecret }}
- name: nats-tls
  mountPath: {{ include "hogwire.natsTLSDir" .ctx }}
  readOnly: true
{{- end }}
{{- if $v.nats.external.auth.existingSecret }}
- name: nats-auth
  mountPath: {{ include "hogwire.natsAuthDir" .ctx }}
  readOnly: true
{{- end }}
{{- end }}
{{- end }}

{{/*
GOMEMLIMIT from the container's memory limit (downward API), so the Go
garbage collector works harder before the kernel kills the process rather
than after. Call with the container name. The data plane needs none: it
sets its collector from its cgroup's limit itself (package gctune).
*/}}
{{- define "hogwire.gomemlimit" -}}
- name: GOMEMLIMIT
  valueFrom:
    resourceFieldRef:
      containerName: {{ . }}
      resource: limits.memory
{{- end }}

{{/*
HTTP probes on the metrics port: liveness asks whether the process runs
(/livez), readiness whether it can serve (/readyz: stores reachable,
configuration loaded). They work whether or not gRPC uses TLS. Call with
(dict "probes" .Values.<role>.probes).
*/}}
{{- define "hogwire.probes" -}}
startupProbe:
  httpGet:
    path: /livez
    port: metrics
  periodSeconds: {{ .probes.startup.periodSeconds }}
  failureThreshold: {{ .probes.startup.failureThreshold }}
readinessProbe:
  httpGet:
    path: /readyz
    port: metrics
  periodSeconds: {{ .probes.readiness.periodSeconds }}
  failureThreshold: {{ .probes.readiness.failureThreshold }}
  timeoutSeconds: {{ .probes.readiness.timeoutSeconds }}
livenessProbe:
  httpGet:
    path: /livez
    port: metrics
  periodSeconds: {{ .probes.liveness.periodSeconds }}
  failureThreshold: {{ .probes.liveness.failureThreshold }}
  timeoutSeconds: {{ .probes.liveness.timeoutSeconds }}
{{- end }}

{{/*
Environment shared by both roles: OpenTelemetry settings and the user's extra
variables. Call with (dict "ctx" $ "component" "controlplane" "extra" list).
*/}}
{{- define "hogwire.commonEnv" -}}
- name: OTEL_SERVICE_NAME
  value: {{ printf "hogwire-%s" .component | quote }}
{{- with .ctx.Values.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with .ctx.Values.otel.protocol }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ . | quote }}
{{- end }}
{{- $attrs := list (printf "k8s.namespace.name=%s" .ctx.Release.Namespace) "k8s.pod.name=$(POD_NAME)" }}
{{- range $k, $v := .ctx.Values.otel.resourceAttributes }}
{{- $attrs = append $attrs (printf "%s=%v" $k $v) }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attrs | quote }}
{{- with .ctx.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- with .extra }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Topology spread constraints with the component's selector filled in when the
user left it out, so the defaults work without repeating labels in values.
*/}}
{{- define "hogwire.topologySpread" -}}
{{- $selector := include "hogwire.selectorLabels" (dict "ctx" .ctx "component" .component) | fromYaml }}
{{- range .constraints }}
{{- $c := deepCopy . }}
{{- if not (hasKey $c "labelSelector") }}
{{- $_ := set $c "labelSelector" (dict "matchLabels" $selector) }}
{{- end }}
- {{ toYaml $c | nindent 2 | trim }}
{{- end }}
{{- end }}

{{/*
Pod annotations for Prometheus scraping.
*/}}
{{- define "hogwire.scrapeAnnotations" -}}
{{- if .Values.metrics.podAnnotations -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .Values.metrics.port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end }}
