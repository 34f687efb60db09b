{{/* Names and labels shared by every template. */}}

{{- define "ecs-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ecs-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ecs-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ecs-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ecs-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "ecs-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "ecs-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ecs-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* `k=v,k2=v2` (sorted) for the node-selector flags. */}}
{{- define "ecs-operator.selectorFlag" -}}
{{- $pairs := list }}
{{- range $k, $v := . }}{{ $pairs = append $pairs (printf "%s=%s" $k $v) }}{{ end }}
{{- join "," $pairs }}
{{- end }}

{{/*
Rights on namespaced resources: a ClusterRole's rules when every namespace is watched, otherwise
one Role per watched namespace. README.md explains each rule.
*/}}
{{- define "ecs-operator.namespacedRules" -}}
- apiGroups: [ecs.operator.dev]
  resources: [taskdefinitions, services, clusters]
  verbs: [list, watch, patch]
- apiGroups: [ecs.operator.dev]
  resources: [tasks]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [ecs.operator.dev]
  resources: [taskdefinitions/status, tasks/status, services/status, clusters/status]
  verbs: [patch]
- apiGroups: [ecs.operator.dev]
  resources: [taskdefinitions/finalizers, tasks/finalizers, services/finalizers]
  verbs: [update]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [pods/eviction]
  verbs: [create]
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [apps]
  resources: [deployments, daemonsets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [apps]
  resources: [controllerrevisions]
  verbs: [get, list, watch, create]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get, create]
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, list, watch, create, patch, delete]
{{- end }}

{{/* Rights on cluster-scoped resources (always in the ClusterRole). */}}
{{- define "ecs-operator.clusterRules" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
- apiGroups: [""]
  resources: [namespaces]
  verbs: {{ if .Values.watchNamespaces }}[get, list, watch]{{ else }}[get]{{ end }}
- apiGroups: [""]
  resources: [nodes]
  verbs: {{ if .Values.nodePools.kwok.enabled }}[get, list, watch, create, patch, delete]{{ else }}[list, watch, patch]{{ end }}
- apiGroups: [ecs.operator.dev]
  resources: [capacityproviders]
  verbs: [list, watch, patch]
- apiGroups: [""]
  resources: [persistentvolumes]
  verbs: [get, list, create, delete]
- apiGroups: [ecs.operator.dev]
  resources: [containerinstances]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [ecs.operator.dev]
  resources: [capacityproviders/status, containerinstances/status]
  verbs: [patch]
{{- range .Values.nodePools.scaleTargets }}
- apiGroups: [{{ .apiGroup | quote }}]
  resources: [{{ printf "%s/scale" (required "nodePools.scaleTargets[].resource is required" .resource) }}]
  verbs: [get, patch]
  {{- with .resourceNames }}
  resourceNames: {{ toJson . }}
  {{- end }}
{{- end }}
{{- end }}

{{/* The scale backend's delete annotations as a CEL list literal (node-policy.yaml). */}}
{{- define "ecs-operator.deleteAnnotations" -}}
{{- $keys := list }}
{{- range .Values.nodePools.scaleTargets }}{{ $keys = append $keys (printf "'%s'" (.deleteAnnotation | default "cluster.x-k8s.io/delete-machine")) }}{{ end }}
{{- printf "[%s]" (join ", " (uniq $keys)) }}
{{- end }}

{{/* The ECS API's objects (api-*.yaml): a name of their own, so neither Deployment's selector matches the other's Pods. */}}
{{- define "ecs-operator.apiName" -}}
{{- printf "%s-api" (include "ecs-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ecs-operator.apiSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-api" (include "ecs-operator.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: api
{{- end }}

{{- define "ecs-operator.apiLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "ecs-operator.apiSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The ECS API's rights on ECS objects: exactly the Kubernetes calls of its operations (operator/ecs_operator/api/),
in a ClusterRole or, with watchNamespaces, one Role per watched namespace. README.md explains each rule.
*/}}
{{- define "ecs-operator.apiRules" -}}
- apiGroups: [ecs.operator.dev]
  resources: [clusters]
  verbs: [get, list, create, update, delete]
- apiGroups: [ecs.operator.dev]
  resources: [taskdefinitions, services]
  verbs: [get, list, create, update, delete]
- apiGroups: [ecs.operator.dev]
  resources: [tasks]
  verbs: [get, list, create, update, patch]
- apiGroups: [apps]
  resources: [controllerrevisions]
  verbs: [get]
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, create, update]
{{- end }}

{{- /* The ECS API's rules on cluster-scoped kinds (README "RBAC of the ECS API", scope `cluster`):
always in a ClusterRole, since a Role cannot grant them. */}}
{{- define "ecs-operator.apiClusterRules" -}}
- apiGroups: [ecs.operator.dev]
  resources: [capacityproviders]
  verbs: [get, list, create, update, delete]
- apiGroups: [ecs.operator.dev]
  resources: [containerinstances]
  verbs: [list, patch]
{{- end }}
