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

{{/* Users whose writes for an object's controller owner skip podgate, as a JSON list. */}}
{{- define "podgate.controllerUsers" -}}
{{- concat (include "podgate.defaultControllerUsers" . | fromJsonArray) .Values.controllerUsers | uniq | toJson }}
{{- end }}

{{/*
CEL: a controller writing an object for its owner (config controllerUsers;
test/cluster/conditions.go says the same, and test/chart checks it).
*/}}
{{- define "podgate.controllerWrite" -}}
request.userInfo.username in {{ include "podgate.controllerUsers" . }} &&
(has(object.metadata.ownerReferences) && object.metadata.ownerReferences.exists(r, has(r.controller) && r.controller) ||
 oldObject != null && has(oldObject.metadata.ownerReferences) && oldObject.metadata.ownerReferences.exists(r, has(r.controller) && r.controller))
{{- end }}

{{/*
CEL: an UPDATE of a Deployment, StatefulSet or DaemonSet that changes
nothing but pod template annotations (kubectl rollout restart) and container
images within their repositories (kubectl rollout undo, set image to another
version): labels, the rest of the spec and of the pod spec stay as they
were. Written never to fail on an object the API server accepts, as an
evaluation error would let failurePolicy Fail refuse the request.
*/}}
{{- define "podgate.rolloutUpdate" -}}
request.operation == 'UPDATE' && request.resource.group == 'apps' &&
request.resource.resource in ['deployments', 'statefulsets', 'daemonsets'] &&
(has(object.metadata.labels) ? object.metadata.labels : {}) == (has(oldObject.metadata.labels) ? oldObject.metadata.labels : {}) &&
object.spec.all(k, k == 'template' || k in oldObject.spec && object.spec[k] == oldObject.spec[k]) &&
oldObject.spec.all(k, k in object.spec) &&
(has(object.spec.template.metadata.labels) ? object.spec.template.metadata.labels : {}) ==
  (has(oldObject.spec.template.metadata.labels) ? oldObject.spec.template.metadata.labels : {}) &&
object.spec.template.spec.all(k, k in ['containers', 'initContainers'] ||
  k in oldObject.spec.template.spec && object.spec.template.spec[k] == oldObject.spec.template.spec[k]) &&
oldObject.spec.template.spec.all(k, k in object.spec.template.spec) &&
['containers', 'initContainers'].all(l, !(l in object.spec.template.spec) ||
  (type(object.spec.template.spec[l]) == list && type(oldObject.spec.template.spec[l]) == list ?
    object.spec.template.spec[l].size() == oldObject.spec.template.spec[l].size() &&
    object.spec.template.spec[l].all(c, oldObject.spec.template.spec[l].exists(o,
      has(c.name) && has(o.name) && c.name == o.name &&
      c.all(k, k == 'image' || k in o && c[k] == o[k]) && o.all(k, k in c) &&
      has(c.image) && has(o.image) &&
      c.image.split('@')[0].substring(0, c.image.split('@')[0].lastIndexOf(':') > c.image.split('@')[0].lastIndexOf('/') ? c.image.split('@')[0].lastIndexOf(':') : c.image.split('@')[0].size()) ==
      o.image.split('@')[0].substring(0, o.image.split('@')[0].lastIndexOf(':') > o.image.split('@')[0].lastIndexOf('/') ? o.image.split('@')[0].lastIndexOf(':') : o.image.split('@')[0].size()))) :
    object.spec.template.spec[l] == oldObject.spec.template.spec[l]))
{{- end }}

{{/*
What every podgate webhook shares: the clientConfig (Service or URL, with
the caBundle in manual mode), the namespaces, and the settings. Call with
(dict "ctx" $ "path" "/mutate" "rollouts" false): the webhook that gets
every workload request but the controllers' own writes (and, with
webhook.rolloutsDuringOutage, restarts and image rollouts); with "rollouts"
true, the one that gets those rollouts with failurePolicy Ignore.
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
{{- if .rollouts }}
# UPDATEs of the kinds a restart or an image rollout is made on.
rules:
  - apiGroups: [apps]
    apiVersions: [v1]
    resources: [deployments, statefulsets, daemonsets]
    operations: [UPDATE]
    scope: Namespaced
{{- else }}
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
{{- end }}
matchPolicy: Equivalent
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values: {{ include "podgate.excludedNamespaces" $ }}
matchConditions:
  {{- if .rollouts }}
  # A restart or an image rollout of an existing workload: podgate judges
  # it while it is up, and an outage does not stop it (failurePolicy Ignore
  # below). Nothing a built-in deny rule reads changes in it.
  - name: a-restart-or-image-rollout
    expression: >-
      {{- include "podgate.rolloutUpdate" $ | nindent 6 }}
  {{- else }}
  # A controller writing an object for its owner (the Pods of a ReplicaSet,
  # the ReplicaSet of a Deployment, the Job of a CronJob) never reaches
  # podgate: its owner's template was checked, and an outage must not stop
  # scaling, rollouts or Jobs. Only the users of controllerUsers count: an
  # ownerReference alone is written by whoever sends the object.
  - name: not-a-controller-writing-for-its-owner
    expression: >-
      !({{- include "podgate.controllerWrite" $ | nindent 6 }})
  {{- if $.Values.webhook.rolloutsDuringOutage }}
  # Restarts and image rollouts go to the webhook below instead.
  - name: not-a-restart-or-image-rollout
    expression: >-
      !({{- include "podgate.rolloutUpdate" $ | nindent 6 }})
  {{- end }}
  {{- end }}
  {{- with $.Values.webhook.extraMatchConditions }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
sideEffects: None
admissionReviewVersions: [v1]
{{- if .rollouts }}
failurePolicy: Ignore
{{- else }}
failurePolicy: {{ $.Values.webhook.failurePolicy }}
{{- end }}
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

{{/*
GOMEMLIMIT, the Go runtime's soft memory limit: 90% of the container's
memory limit, in MiB. The collector then works harder as the heap nears the
limit instead of the pod being OOM-killed; the other 10% is what the
runtime's limit does not count (memory the kernel charges to the container,
the heap's growth between two collections). The quantity is read as
values.schema.json lets it be written: a number of bytes, or one with a
decimal (k, M, G, ...) or binary (Ki, Mi, Gi, ...) suffix, or m (thousandths).
A limit below 64Mi is refused: the webhook needs about 55Mi idle.
*/}}
{{- define "podgate.goMemLimit" -}}
{{- $q := .Values.resources.limits.memory -}}
{{- $bytes := 0.0 -}}
{{- if kindIs "string" $q -}}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" $q -}}
{{- $units := dict "" 1.0 "m" 0.001 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "P" 1e15 "E" 1e18 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 "Ei" 1152921504606846976.0 -}}
{{- $unit := trimPrefix $number $q -}}
{{- if or (not $number) (not (hasKey $units $unit)) -}}
{{- fail (printf "resources.limits.memory %q is not a memory quantity" $q) -}}
{{- end -}}
{{- $bytes = mulf (float64 $number) (get $units $unit) -}}
{{- else -}}
{{- $bytes = float64 $q -}}
{{- end -}}
{{- if lt $bytes 67108864.0 -}}
{{- fail (printf "resources.limits.memory %v: podgate needs at least 64Mi (it runs at about 55Mi idle)" $q) -}}
{{- end -}}
{{- printf "%dMiB" (int64 (floor (divf (mulf $bytes 0.9) 1048576.0))) -}}
{{- end }}
