variable "project_id" {
  description = "Google Cloud project to deploy into."
  type        = string
}

variable "region" {
  description = "Region for functions, queues, buckets and the gateway."
  type        = string
  default     = "us-central1"
}

variable "environment" {
  description = "Environment name (dev, prod): prefixes every resource name (and names the Firestore database) so two environments can share a project."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,7}$", var.environment))
    error_message = "environment: 2-8 lowercase letters/digits (it prefixes names with length limits)."
  }
}

variable "repo_root" {
  description = "Path of the repository root (holds functions/ and build/); null means the parent of this module."
  type        = string
  default     = null
}

variable "zip_dir" {
  description = "Where function zips are written before upload; null means <repo>/build/zips/<environment>."
  type        = string
  default     = null
}

variable "runtime" {
  description = "Cloud Functions runtime for every function."
  type        = string
  default     = "python311"
}

variable "labels" {
  description = "Extra labels for every labelled resource."
  type        = map(string)
  default     = {}
}

variable "default_model" {
  description = "Model used by inference when a request names none (PROMPTOPT_DEFAULT_MODEL), e.g. gemini:gemini-2.5-flash."
  type        = string
  default     = "gemini:gemini-2.5-flash"
}

variable "log_level" {
  description = "PROMPTOPT_LOG_LEVEL for every function."
  type        = string
  default     = "INFO"
}

variable "firestore_location" {
  description = "Firestore location (nam5, eur3 or a region); null means var.region. Cannot change after creation."
  type        = string
  default     = null
}

variable "firestore_pitr" {
  description = "Firestore point-in-time recovery."
  type        = bool
  default     = true
}

variable "noncurrent_retention_days" {
  description = "Days replaced/deleted object versions are kept in the datasets and artifacts buckets."
  type        = number
  default     = 30
}

variable "gateway_region" {
  description = "API Gateway region if var.region does not offer API Gateway; null means var.region."
  type        = string
  default     = null
}

variable "jwt_issuer" {
  description = "JWT issuer accepted by the gateway; null means Firebase Auth of this project."
  type        = string
  default     = null
}

variable "jwt_jwks_uri" {
  description = "JWKS URI of the issuer (default: Firebase Auth / Secure Token)."
  type        = string
  default     = "https://www.googleapis.com/service_accounts/v1/metadata/x509/securetoken@system.gserviceaccount.com"
}

variable "jwt_audiences" {
  description = "Accepted JWT audiences (comma-separated); null means the project id (Firebase Auth)."
  type        = string
  default     = null
}

variable "audit_retention_days" {
  description = "Days an audit log entry is kept (the functions stamp expires_at; a Firestore TTL policy deletes it)."
  type        = number
  default     = 400

  validation {
    condition     = var.audit_retention_days >= 1 && var.audit_retention_days <= 3650
    error_message = "audit_retention_days: 1-3650."
  }
}

variable "notification_channels" {
  description = "Cloud Monitoring notification channel ids (projects/P/notificationChannels/N) the alerts notify; create channels (email, Slack, PagerDuty) in the console or with google_monitoring_notification_channel."
  type        = list(string)
  default     = []
}

variable "error_5xx_threshold" {
  description = "5xx answers in 5 minutes, across functions, above which the error alert fires."
  type        = number
  default     = 5
}

variable "secrets" {
  description = "Logical ids of extra secrets to create besides those manifests mount (each becomes <environment>-<id>; values are added with gcloud, never via Terraform)."
  type        = list(string)
  default     = []
}

variable "queues" {
  description = "Cloud Tasks queue settings by logical name (unset settings take modules/messaging's defaults)."
  type = map(object({
    max_dispatches_per_second = optional(number)
    max_concurrent_dispatches = optional(number)
    max_attempts              = optional(number)
    max_retry_duration        = optional(string)
    min_backoff               = optional(string)
    max_backoff               = optional(string)
    max_doublings             = optional(number)
    log_sampling_ratio        = optional(number)
  }))
  default = {
    inference = {
      max_dispatches_per_second = 5
      max_concurrent_dispatches = 20
      max_attempts              = 10
      max_retry_duration        = "3600s"
      min_backoff               = "2s"
      max_backoff               = "300s"
      max_doublings             = 5
      log_sampling_ratio        = 0.1
    }
  }
}

variable "notification_topics" {
  description = "Topics published for people to subscribe to: experiment-alerts carries regressed scheduled runs."
  type        = list(string)
  default     = ["experiment-alerts"]
}

variable "max_delivery_attempts" {
  description = "Push deliveries before a Pub/Sub message goes to its dead-letter topic (5-100)."
  type        = number
  default     = 10
}

variable "iam_propagation_wait" {
  description = "How long functions wait after their role grants are created or changed (IAM changes take a while to propagate; the provider's Cloud Functions examples wait 60s)."
  type        = string
  default     = "60s"
}

variable "dashboard_origins" {
  description = "Origins the web UI is served from (the gateway's https://<host>, a custom domain); the datasets bucket allows browser uploads from them. The gateway's host is known after the first apply (output gateway_url)."
  type        = list(string)
  default     = []
}

variable "firebase_web_app" {
  description = "Register a Firebase web app whose configuration the web UI signs in with (the project must have Firebase enabled). Off: the web UI shows sign-in as unavailable."
  type        = bool
  default     = true
}
