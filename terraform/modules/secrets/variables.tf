variable "project_id" {
  description = "Project that holds the secrets."
  type        = string
}

variable "environment" {
  description = "Environment name; prefixes every secret id."
  type        = string
}

variable "secret_ids" {
  description = "Logical secret ids to create (the platform's plus every secret a manifest mounts)."
  type        = list(string)
}

variable "labels" {
  description = "Labels for every secret."
  type        = map(string)
  default     = {}
}
