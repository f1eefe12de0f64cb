variable "spec" {
  description = "One function as modules/manifest outputs it: the builder's manifest plus derived names and role maps."
  type = object({
    name         = string
    description  = string
    entry_point  = string
    trigger_type = string
    topic        = optional(string)
    queue        = optional(string)
    bucket       = optional(string)
    event_type   = optional(string)
    schedule     = optional(string)
    time_zone    = optional(string)
    deploy_name  = string
    account_id   = string
    resources = object({
      memory        = string
      cpu           = string
      timeout_s     = number
      min_instances = number
      max_instances = number
      concurrency   = number
    })
    env = map(string)
    secrets = map(object({
      secret  = string
      version = string
    }))
    roles = map(string)
    bucket_roles = map(object({
      bucket = string
      role   = string
      why    = string
    }))
    sign_urls   = bool
    sign_tokens = bool
  })
}

variable "project_id" {
  description = "Project to deploy into."
  type        = string
}

variable "region" {
  description = "Region of the function (and of its Eventarc trigger)."
  type        = string
}

variable "environment" {
  description = "Environment name; prefixes the function and service account names."
  type        = string
}

variable "labels" {
  description = "Labels for the function and its subscription."
  type        = map(string)
  default     = {}
}

variable "runtime" {
  description = "Cloud Functions runtime."
  type        = string
  default     = "python311"
}

variable "source_dir" {
  description = "The staged bundle folder (build/<name>) made by scripts/build."
  type        = string
}

variable "zip_dir" {
  description = "Folder the source zip is written to before upload."
  type        = string
}

variable "sources_bucket" {
  description = "Bucket the source zip is uploaded to."
  type        = string
}

variable "build_service_account" {
  description = "Fully qualified id of the service account Cloud Build uses for the function."
  type        = string
}

variable "platform_env" {
  description = "Environment variables every function gets (project, environment, resource names)."
  type        = map(string)
  default     = {}
}

variable "gateway_service_account" {
  description = "Email of the API Gateway backend account (sole invoker of HTTP functions)."
  type        = string
}

variable "tasks_service_account" {
  description = "Email of the Cloud Tasks OIDC account (sole invoker of task functions)."
  type        = string
}

variable "tasks_service_account_name" {
  description = "Fully qualified name of the Cloud Tasks OIDC account (for actAs by enqueuers)."
  type        = string
}

variable "api_tokens_service_account_name" {
  description = "Fully qualified name of the API-token issuer account (signJwt by the token exchange)."
  type        = string
}

variable "pubsub_push_service_account" {
  description = "Email of the Pub/Sub push OIDC account (sole invoker of Pub/Sub functions)."
  type        = string
}

variable "eventarc_service_account" {
  description = "Email of the Eventarc trigger account (sole invoker of storage functions)."
  type        = string
}

variable "pubsub_service_agent" {
  description = "Email of the project's Pub/Sub service agent (dead-letters messages)."
  type        = string
}

variable "topic_ids" {
  description = "Logical topic name -> topic id."
  type        = map(string)
  default     = {}
}

variable "dead_letter_topic_ids" {
  description = "Logical topic name -> dead-letter topic id."
  type        = map(string)
  default     = {}
}

variable "buckets" {
  description = "Logical bucket name (as a storage trigger names it) -> bucket name."
  type        = map(string)
  default     = {}
}

variable "secret_ids" {
  description = "Logical secret id -> fully qualified secret id, for the secrets the manifest lists."
  type        = map(string)
  default     = {}
}

variable "secret_names" {
  description = "Logical secret id -> Secret Manager secret id (<environment>-<logical id>)."
  type        = map(string)
  default     = {}
}

variable "shared_grants" {
  description = "Ids of the shared role grants a function relies on (modules/identities); the function waits for them."
  type        = map(string)
  default     = {}
}

variable "iam_wait" {
  description = "How long to wait for IAM propagation after grants are created or changed."
  type        = string
  default     = "60s"
}

variable "max_delivery_attempts" {
  description = "Push deliveries before a Pub/Sub message is dead-lettered (5-100)."
  type        = number
  default     = 10

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "Pub/Sub allows 5 to 100 delivery attempts."
  }
}
