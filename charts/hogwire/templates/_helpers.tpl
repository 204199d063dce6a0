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

{{- define "hogwire.controlplaneAddr" -}}
{{- if .Values.dataplane.controlplaneAddr }}
{{- .Values.dataplane.controlplaneAddr }}
{{- else }}
{{- printf "%s.%s.svc:%d" (include "hogwire.controlplane.fullname" .) .Release.Namespace (int .Values.controlplane.service.grpcPort) }}
{{- end }}
{{- end }}

{{/*
Paths the secret material is mounted at. The flags in the ConfigMaps point
here, so the two never drift apart.
*/}}
{{- define "hogwire.tokensDir" -}}/etc/hogwire/tokens{{- end }}
{{- define "hogwire.secretsDir" -}}/etc/hogwire/secrets{{- end }}

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
