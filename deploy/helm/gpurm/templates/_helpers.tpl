{{/* Name of the release's objects: the release name when it says gpurm already, else <release>-gpurm. */}}
{{- define "gpurm.fullname" -}}
{{- if contains "gpurm" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-gpurm" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "gpurm.labels" -}}
app.kubernetes.io/name: gpurm
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* Selector labels of one component: (list $ "manager"). */}}
{{- define "gpurm.selectorLabels" -}}
app.kubernetes.io/name: gpurm
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "gpurm.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The server section of gpu_config.yaml, the same for both workloads. */}}
{{- define "gpurm.serverConfig" -}}
server:
  listen: "0.0.0.0:{{ .Values.service.port }}"
  # The Service's names, which in-cluster clients put in Host (IP addresses,
  # as probes and Prometheus use, are always accepted; docs/SECURITY.md).
  {{- $service := include "gpurm.fullname" . }}
  allowed_hosts: [{{ $service }}, {{ $service }}.{{ .Release.Namespace }}, {{ $service }}.{{ .Release.Namespace }}.svc, {{ $service }}.{{ .Release.Namespace }}.svc.cluster.local]
  data_dir: /var/lib/gpurm
  log_dir: /var/log/gpurm
  dcgm_compatible_metrics: {{ .Values.config.dcgmCompatibleMetrics }}
{{- if .Values.tls.secretName }}
  tls:
    cert_file: /etc/gpurm-tls/tls.crt
    key_file: /etc/gpurm-tls/tls.key
{{- end }}
  auth:
{{- if .Values.auth.tokensSecretName }}
    tokens_file: /etc/gpurm-tokens/{{ .Values.auth.tokensSecretKey }}
{{- else }}
    # Reachable by anything in the cluster that can reach the Service. To
    # require bearer tokens, set auth.tokensSecretName to a Secret holding
    # the token file `gpurm token create` writes (docs/SECURITY.md).
    allow_unauthenticated: true
{{- end }}
{{- end -}}

{{/* gpu_config.yaml of the per-node DaemonSet. */}}
{{- define "gpurm.nodeConfig" -}}
monitor_update_interval: {{ .Values.nodeMonitor.monitorUpdateInterval }}
resource_change_threshold: {{ .Values.config.resourceChangeThreshold }}
log_level: {{ .Values.config.logLevel | quote }}
{{ include "gpurm.serverConfig" . }}
  enforcement:
    # The cluster's allocations are the manager's: this pod's own ledger has
    # none, so every job would read as foreign here. The manager classes
    # them (docs/kubernetes.md).
    foreign_process: ignore
{{- end -}}

{{/* Volumes and mounts of the configuration, TLS and token Secrets, and the writable directories. */}}
{{- define "gpurm.volumeMounts" -}}
- name: config
  mountPath: /etc/gpurm
  readOnly: true
{{- if .Values.tls.secretName }}
- name: tls
  mountPath: /etc/gpurm-tls
  readOnly: true
{{- end }}
{{- if .Values.auth.tokensSecretName }}
- name: tokens
  mountPath: /etc/gpurm-tokens
  readOnly: true
{{- end }}
- name: data
  mountPath: /var/lib/gpurm
- name: logs
  mountPath: /var/log/gpurm
{{- end -}}

{{- define "gpurm.volumes" -}}
- name: config
  configMap:
    name: {{ index . 1 }}
{{- with (index . 0).Values.tls.secretName }}
- name: tls
  secret:
    secretName: {{ . }}
{{- end }}
{{- with (index . 0).Values.auth.tokensSecretName }}
- name: tokens
  secret:
    secretName: {{ . }}
{{- end }}
- name: data
  emptyDir: {}
- name: logs
  emptyDir: {}
{{- end -}}

{{- define "gpurm.probeScheme" -}}
{{ if .Values.tls.secretName }}HTTPS{{ else }}HTTP{{ end }}
{{- end -}}
