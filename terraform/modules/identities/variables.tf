variable "project_id" {
  description = "Project that holds the service accounts."
  type        = string
}

variable "environment" {
  description = "Environment name (dev, prod); prefixes every account id."
  type        = string
}

variable "pubsub_service_agent" {
  description = "Email of the project's Pub/Sub service agent."
  type        = string
}

variable "storage_service_agent" {
  description = "Email of the project's Cloud Storage service agent."
  type        = string
}

variable "enable_storage_events" {
  description = "Whether any function has a storage trigger (grants the storage agent pubsub.publisher)."
  type        = bool
  default     = false
}
