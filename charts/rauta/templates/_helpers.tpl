{{/* The chart name, or nameOverride. */}}
{{- define "rauta.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object name: fullnameOverride, else the release name
when it already contains the chart name ("rauta"), else "<release>-rauta".
Kept at 40 characters so suffixes such as "-controller-ca" stay within 63.
*/}}
{{- define "rauta.fullname" -}}
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

{{/* The Service the data planes dial; its name is passed as -controller-service. */}}
{{- define "rauta.controllerService" -}}
{{- printf "%s-controller" (include "rauta.fullname" .) }}
{{- end }}

{{/* The GatewayParameters the GatewayClass points at. */}}
{{- define "rauta.defaultParameters" -}}
{{- printf "%s-default" (include "rauta.fullname" .) }}
{{- end }}

{{- define "rauta.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rauta.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag or repository@digest; the tag defaults to appVersion. */}}
{{- define "rauta.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "rauta.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "rauta.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ (default .Chart.AppVersion .Values.image.tag) | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rauta
{{- end }}

{{/* Selector labels of one component: pass (list . "controller"). */}}
{{- define "rauta.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "rauta.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* The restricted Pod Security container securityContext (user 65532). */}}
{{- define "rauta.restrictedContainerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Downward API environment shared by controller-like pods. */}}
{{- define "rauta.identityEnv" -}}
- name: RAUTA_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: RAUTA_IDENTITY
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- end }}
