variable "project_id" {
  description = "Project whose logs and metrics are watched."
  type        = string
}

variable "environment" {
  description = "Environment name; prefixes metric, policy and dashboard names."
  type        = string
}

variable "labels" {
  description = "User labels for alert policies."
  type        = map(string)
  default     = {}
}

variable "gateway_host" {
  description = "Hostname of the API gateway (the uptime check calls https://<host><liveness_path>)."
  type        = string
}

variable "liveness_path" {
  description = "Path of the public liveness endpoint the uptime check calls."
  type        = string
}

variable "notification_channels" {
  description = "Cloud Monitoring notification channel ids (projects/P/notificationChannels/N) every alert notifies."
  type        = list(string)
  default     = []
}

variable "error_5xx_threshold" {
  description = "5xx answers in 5 minutes, across functions, above which the error alert fires."
  type        = number
  default     = 5
}

variable "dead_letter_subscription_regex" {
  description = "Regex of the dead-letter hold subscriptions (modules/messaging) whose backlog alerts."
  type        = string
}
