variable "project_id" {
  description = "Google Cloud project of this environment."
  type        = string
}

variable "region" {
  description = "Region of this environment."
  type        = string
  default     = "us-central1"
}

variable "repo_root" {
  description = "Repository root relative to this folder."
  type        = string
  default     = "../../.."
}

variable "firestore_location" {
  description = "Firestore location; null means the region."
  type        = string
  default     = null
}

variable "firestore_pitr" {
  description = "Firestore point-in-time recovery."
  type        = bool
  default     = true
}

variable "log_level" {
  description = "Log level of every function."
  type        = string
  default     = "INFO"
}

variable "labels" {
  description = "Extra labels for every labelled resource."
  type        = map(string)
  default     = {}
}
