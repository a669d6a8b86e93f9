{{- define "launchbay.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}{{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{ end }}
{{- end -}}

{{- define "launchbay.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "launchbay.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "launchbay.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}{{ default (include "launchbay.fullname" .) .Values.serviceAccount.name }}
{{- else }}{{ default "default" .Values.serviceAccount.name }}{{ end }}
{{- end -}}

{{- define "launchbay.databaseSecret" -}}
{{- default (printf "%s-database" (include "launchbay.fullname" .)) .Values.database.existingSecret }}
{{- end -}}

{{- define "launchbay.templatesConfigMap" -}}
{{- default (printf "%s-templates" (include "launchbay.fullname" .)) .Values.existingTemplatesConfigMap }}
{{- end -}}
