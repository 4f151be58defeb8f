{{/* Chart name, 63 characters at most (a DNS label). */}}
{{- define "podgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Prefix of every object name: the release name, with the chart name appended
unless it is already in it. 40 characters at most, so that with the longest
suffix ("-webhook-configurations", 23 characters) a name still fits in 63.
*/}}
{{- define "podgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "podgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "podgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "podgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "podgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: podgate
{{- end }}

{{/* The image, pinned by digest when one is given, else by tag. */}}
{{- define "podgate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* The Secret holding the serving certificate, in every TLS mode. */}}
{{- define "podgate.tlsSecretName" -}}
{{- if eq .Values.tls.mode "manual" }}
{{- .Values.tls.manual.secretName }}
{{- else }}
{{- printf "%s-tls" (include "podgate.fullname" .) }}
{{- end }}
{{- end }}

{{/* Namespaces podgate never looks at, as a JSON list. */}}
{{- define "podgate.excludedNamespaces" -}}
{{- concat (list "kube-system" "kube-node-lease" .Release.Namespace) .Values.excludedNamespaces | uniq | toJson }}
{{- end }}

{{/* Where the serving certificate lives in the pod. */}}
{{- define "podgate.certDir" -}}
/tmp/k8s-webhook-server/serving-certs
{{- end }}

{{/*
What both webhooks share: the clientConfig (Service or URL, with the caBundle
in manual mode), the kinds, the namespaces, and the settings every podgate
webhook has. Call with (dict "ctx" $ "path" "/mutate").
*/}}
{{- define "podgate.webhook" -}}
{{- $ := .ctx -}}
clientConfig:
  {{- if $.Values.webhook.url }}
  url: {{ printf "%s%s" (trimSuffix "/" $.Values.webhook.url) .path | quote }}
  {{- else }}
  service:
    name: {{ include "podgate.fullname" $ }}
    namespace: {{ $.Release.Namespace }}
    path: {{ .path }}
    port: 443
  {{- end }}
  {{- if eq $.Values.tls.mode "manual" }}
  caBundle: {{ $.Values.tls.manual.caBundle }}
  {{- end }}
# The kinds of podgate's policies (docs/policies.md), on CREATE and UPDATE.
rules:
  - apiGroups: [""]
    apiVersions: [v1]
    resources: [pods]
    operations: [CREATE, UPDATE]
    scope: Namespaced
  - apiGroups: [apps]
    apiVersions: [v1]
    resources: [deployments, statefulsets, daemonsets, replicasets]
    operations: [CREATE, UPDATE]
    scope: Namespaced
  - apiGroups: [batch]
    apiVersions: [v1]
    resources: [jobs, cronjobs]
    operations: [CREATE, UPDATE]
    scope: Namespaced
  {{- if .exceptions }}
  # The validating webhook checks PolicyExceptions: the rules they name
  # exist and may be excepted, the expiry is in range (docs/exceptions.md).
  - apiGroups: [podgate.dev]
    apiVersions: [v1alpha1]
    resources: [policyexceptions]
    operations: [CREATE, UPDATE]
    scope: Namespaced
  {{- end }}
matchPolicy: Equivalent
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values: {{ include "podgate.excludedNamespaces" $ }}
matchConditions:
  # Podgate skips a Pod owned by a controller (its owner's pod template was
  # checked), so the API server need not call for it: every ReplicaSet,
  # Job and StatefulSet pod is spared a round trip.
  - name: skip-controlled-pods
    expression: >-
      request.resource.resource != "pods" ||
      !has(object.metadata.ownerReferences) ||
      !object.metadata.ownerReferences.exists(r, has(r.controller) && r.controller)
  # No condition skips podgate's own ServiceAccount: it creates no workloads,
  # so there is nothing to spare.
  {{- with $.Values.webhook.extraMatchConditions }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
sideEffects: None
admissionReviewVersions: [v1]
failurePolicy: {{ $.Values.webhook.failurePolicy }}
timeoutSeconds: {{ $.Values.webhook.timeoutSeconds }}
{{- end }}

{{/* Annotations of both webhook configurations. */}}
{{- define "podgate.webhookAnnotations" -}}
{{- if eq .Values.tls.mode "cert-manager" -}}
annotations:
  # cert-manager's cainjector copies the serving Certificate's CA into every
  # webhook's caBundle.
  cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ include "podgate.fullname" . }}-serving
{{- end }}
{{- end }}
