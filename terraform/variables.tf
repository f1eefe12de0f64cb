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
  description = "Environment name (dev, prod): prefixes resource names so two environments can share a project."
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

variable "secrets" {
  description = "Secret Manager secret ids the platform creates (values are added with gcloud, never via Terraform)."
  type        = list(string)
  default     = ["openai-api-key", "signing-key"]
}

variable "topics" {
  description = "Pub/Sub topics of the experiment pipeline (each gets a dead-letter topic)."
  type        = list(string)
  default     = ["batch-completed", "evaluation-completed", "proposal-ready", "schedule-tick"]
}

variable "queues" {
  description = "Cloud Tasks queues by logical name (see modules/messaging for the settings and defaults)."
  type        = any
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

variable "schedule_tick" {
  description = "Cloud Scheduler job publishing to schedule-tick (the function that starts due runs consumes it); null disables it."
  type = object({
    schedule  = string
    time_zone = optional(string, "Etc/UTC")
  })
  default = {
    schedule  = "*/5 * * * *"
    time_zone = "Etc/UTC"
  }
}

variable "max_delivery_attempts" {
  description = "Push deliveries before a Pub/Sub message goes to its dead-letter topic (5-100)."
  type        = number
  default     = 10
}
