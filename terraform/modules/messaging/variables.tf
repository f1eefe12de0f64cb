variable "project_id" {
  description = "Project that holds the queues and topics."
  type        = string
}

variable "region" {
  description = "Region of the queues and scheduler jobs."
  type        = string
}

variable "environment" {
  description = "Environment name; prefixes every queue, topic and job name."
  type        = string
}

variable "labels" {
  description = "Labels for topics and subscriptions."
  type        = map(string)
  default     = {}
}

variable "pubsub_service_agent" {
  description = "Email of the project's Pub/Sub service agent (publishes dead letters)."
  type        = string
}

variable "topics" {
  description = "Logical topic names; each gets a dead-letter topic and a dead-letter hold subscription."
  type        = list(string)
}

variable "notification_topics" {
  description = "Topics the platform publishes for people to subscribe to (no function consumes them)."
  type        = list(string)
  default     = []
}

variable "queues" {
  description = "Cloud Tasks queues by logical name with their rate limits and retry policy."
  type = map(object({
    max_dispatches_per_second = optional(number, 5)
    max_concurrent_dispatches = optional(number, 20)
    max_attempts              = optional(number, 10)
    max_retry_duration        = optional(string, "3600s")
    min_backoff               = optional(string, "2s")
    max_backoff               = optional(string, "300s")
    max_doublings             = optional(number, 5)
    log_sampling_ratio        = optional(number, 0.1)
  }))
}

variable "schedules" {
  description = "Cloud Scheduler jobs by name: cron schedule, time zone and the logical topic to publish to."
  type = map(object({
    schedule  = string
    topic     = string
    time_zone = optional(string, "Etc/UTC")
  }))
  default = {}
}
