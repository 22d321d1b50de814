{{/* The name of every object the chart makes: the release's, cut to what Kubernetes allows. */}}
{{- define "weir.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Cluster-wide objects (the ClusterRole and its binding) carry the release's namespace too,
so that installations of one release name in two namespaces do not claim the same ones. */}}
{{- define "weir.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "weir.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "weir.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "weir.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "weir.serviceAccountName" -}}
{{- default (include "weir.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "weir.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The Secret holding WEIR_TOKENS: the one given, or the chart's own. */}}
{{- define "weir.tokensSecret" -}}
{{- default (printf "%s-tokens" (include "weir.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}
