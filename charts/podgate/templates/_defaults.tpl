{{- /* Generated from policies/ by `make chart-schema`; do not edit. */ -}}
{{/* The built-in policies, as a JSON list. */}}
{{- define "podgate.builtinPolicies" -}}
["placement","probes","rollout","stateful-volumes","tolerations"]
{{- end }}

{{/* The shipped config's controllerUsers (policies/data.yaml), as a JSON list. */}}
{{- define "podgate.defaultControllerUsers" -}}
["system:kube-controller-manager","system:serviceaccount:kube-system:cronjob-controller","system:serviceaccount:kube-system:daemon-set-controller","system:serviceaccount:kube-system:deployment-controller","system:serviceaccount:kube-system:job-controller","system:serviceaccount:kube-system:replicaset-controller","system:serviceaccount:kube-system:replication-controller","system:serviceaccount:kube-system:statefulset-controller"]
{{- end }}
