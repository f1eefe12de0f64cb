variable "project_id" {
  description = "Project that holds the secrets."
  type        = string
}

variable "secret_ids" {
  description = "Secret ids to create (the platform's plus every secret a manifest references)."
  type        = list(string)
}

variable "labels" {
  description = "Labels for every secret."
  type        = map(string)
  default     = {}
}
