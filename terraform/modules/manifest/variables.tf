variable "manifests" {
  description = "Folder name -> decoded functions/<folder>/function.yaml."
  type        = any
}

variable "environment" {
  description = "Environment name; prefixes function and service account names."
  type        = string
}

variable "base_topics" {
  description = "Platform topics created whether or not a manifest subscribes to them."
  type        = list(string)
  default     = []
}

variable "base_queues" {
  description = "Platform Cloud Tasks queues (settings override what manifests imply)."
  type        = any
  default     = {}
}

variable "base_secrets" {
  description = "Platform secrets created whether or not a manifest lists them."
  type        = list(string)
  default     = []
}

variable "schedule_tick" {
  description = "The platform schedule-tick job, or null."
  type = object({
    schedule  = string
    time_zone = optional(string, "Etc/UTC")
  })
  default = null
}
