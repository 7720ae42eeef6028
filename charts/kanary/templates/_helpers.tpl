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
