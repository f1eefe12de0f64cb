variable "functions" {
  description = "Folder name -> build/<folder>/function.json: the builder's validated manifest with every default applied (schema: shared/promptopt/manifest.py FunctionSpec)."
  type = map(object({
    name        = string
    description = string
    entry_point = string
    # One shape for every trigger type; the attributes of other types are absent (null).
    trigger = object({
      type       = string
      topic      = optional(string)
      queue      = optional(string)
      bucket     = optional(string)
      event_type = optional(string)
      schedule   = optional(string)
      time_zone  = optional(string)
    })
    resources = object({
      memory        = string
      cpu           = string
      timeout_s     = number
      min_instances = number
      max_instances = number
      concurrency   = number
    })
    env = map(string)
    secrets = list(object({
      env     = string
      secret  = string
      version = string
    }))
    roles = list(object({
      role = string
      why  = string
    }))
    bucket_roles = list(object({
      bucket = string
      role   = string
      why    = string
    }))
    sign_urls   = bool
    sign_tokens = bool
  }))
}

variable "manifest_folders" {
  description = "Folders holding a functions/<folder>/function.yaml: every one must have been built."
  type        = set(string)
}

variable "environment" {
  description = "Environment name; prefixes function and service account names."
  type        = string
}

variable "base_queues" {
  description = "Platform Cloud Tasks queue settings by logical name (they win over what manifests imply)."
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
  default = {}
}

variable "base_secrets" {
  description = "Platform secrets created whether or not a manifest mounts them."
  type        = list(string)
  default     = []
}
