{{/* Names, labels and the pieces both Deployments share. */}}

{{- define "kanary.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object's name. Kept to 40 characters so that the longest derived name
("<prefix>-controller-leader-election") is still a valid 63-character name.
*/}}
{{- define "kanary.fullname" -}}
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

{{- define "kanary.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "kanary.labels" -}}
helm.sh/chart: {{ include "kanary.chart" . }}
app.kubernetes.io/name: {{ include "kanary.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kanary
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: include "kanary.selectorLabels" (list . "webhook") */}}
{{- define "kanary.selectorLabels" -}}
{{- $top := index . 0 -}}
app.kubernetes.io/name: {{ include "kanary.name" $top }}
app.kubernetes.io/instance: {{ $top.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* Labels of one component's objects: include "kanary.componentLabels" (list . "webhook") */}}
{{- define "kanary.componentLabels" -}}
{{ include "kanary.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "kanary.webhookName" -}}
{{ include "kanary.fullname" . }}-webhook
{{- end }}

{{- define "kanary.controllerName" -}}
{{ include "kanary.fullname" . }}-controller
{{- end }}

{{/* The Lease the controllers elect their leader on (made by the chart, see lease.yaml). */}}
{{- define "kanary.leaseName" -}}
{{ include "kanary.fullname" . }}-controller
{{- end }}

{{/* The Secret the webhook pods mount: tls.crt and tls.key. */}}
{{- define "kanary.tlsSecretName" -}}
{{- if eq .Values.certificates.mode "existingSecret" }}
{{- required "certificates.existingSecret.name is required when certificates.mode is existingSecret" .Values.certificates.existingSecret.name }}
{{- else }}
{{- include "kanary.fullname" . }}-webhook-tls
{{- end }}
{{- end }}

{{/* The Secret holding the CA (modes generate and certManager without an issuerRef). */}}
{{- define "kanary.caSecretName" -}}
{{ include "kanary.fullname" . }}-webhook-ca
{{- end }}

{{/*
The names the serving certificate is valid for, as YAML {dns: [...], ips: [...]}: the webhook
Service's DNS names and, with webhook.url, the URL's host.
*/}}
{{- define "kanary.webhookSANs" -}}
{{- $svc := include "kanary.webhookName" . }}
{{- $ns := .Release.Namespace }}
{{- $dns := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns .Values.clusterDomain) }}
{{- $ips := list }}
{{- if .Values.webhook.url }}
{{- $host := (urlParse .Values.webhook.url).hostname }}
{{- if regexMatch "^[0-9]+(\\.[0-9]+){3}$" $host }}
{{- $ips = append $ips $host }}
{{- else if contains ":" $host }}
{{- $ips = append $ips $host }}
{{- else if $host }}
{{- $dns = append $dns $host }}
{{- end }}
{{- end }}
dns: {{ toJson $dns }}
ips: {{ toJson $ips }}
{{- end }}

{{- define "kanary.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
The restricted Pod Security Standard: a fixed non-root user (the image's USER), no privilege
escalation, no capabilities, a read-only root filesystem and the runtime's default seccomp
profile. Neither daemon writes a file.
*/}}
{{- define "kanary.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "kanary.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
The webhook's rules (rbac.yaml puts them in a ClusterRole, or in a Role of watchNamespace): a
watch-fed cache of Services (with a live GET of one it has not seen yet) and of EndpointSlices
(for the warning about a backend without ready endpoints), wherever a Kanary may be.
*/}}
{{- define "kanary.webhookRules" -}}
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
{{- end }}

{{/* The controller's rules, wherever it manages Kanaries (rbac.yaml, as the webhook's). */}}
{{- define "kanary.controllerRules" -}}
# Its informer on Kanaries (list, then watch).
- apiGroups: [kanary.pyxida.io]
  resources: [kanaries]
  verbs: [list, watch]
# Status goes through /status, as a merge patch.
- apiGroups: [kanary.pyxida.io]
  resources: [kanaries/status]
  verbs: [patch]
# Its children carry an ownerReference with blockOwnerDeletion: true, which an API server
# with the OwnerReferencesPermissionEnforcement admission plugin allows only to whoever may
# update the owner's finalizers. The controller never writes finalizers itself.
- apiGroups: [kanary.pyxida.io]
  resources: [kanaries/finalizers]
  verbs: [update]
# The children: informers (list, watch; ConfigMaps, Deployments and PodDisruptionBudgets
# selected by app.kubernetes.io/managed-by=kanary, Services all, since backends are read
# too) and server-side apply, a PATCH that creates the object when it is missing and so
# also needs create.
- apiGroups: [""]
  resources: [services]
  verbs: [list, watch, create, patch]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [list, watch, create, patch]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [list, watch, create, patch]
# The structure ConfigMaps are immutable and named by their configuration's hash:
# superseded ones are deleted once no ReplicaSet uses them. The state ConfigMap
# (<name>-haproxy-state) is patched in place. get: the controller grants it to each
# Kanary's agent (below), and RBAC lets it grant only what it holds.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, patch, delete]
# The agent's identity per Kanary: ServiceAccount, Role and RoleBinding <name>-haproxy,
# read with a GET and server-side applied. The Role grants get, list and watch on the one
# state ConfigMap, which the controller holds itself (no bind or escalate).
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get, create, patch]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, create, patch]
# Which ConfigMaps the HAProxy ReplicaSets still mount (read only).
- apiGroups: [apps]
  resources: [replicasets]
  verbs: [list, watch]
# The backends' ready endpoints.
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
# Why a rollout waits (an image that cannot be pulled, a crash loop, an unschedulable or
# unready pod), for the Ready condition: one LIST of a Kanary's HAProxy pods by the
# Deployment's selector while its rollout is pending; no watch, no get, no write.
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
# Events about Kanaries; a repeated one is patched (count + 1), as client-go does.
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- end }}
