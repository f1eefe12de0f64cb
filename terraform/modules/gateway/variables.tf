variable "project_id" {
  description = "Project of the gateway."
  type        = string
}

variable "region" {
  description = "Gateway region (API Gateway is offered in a subset of regions, e.g. us-central1, europe-west1)."
  type        = string
}

variable "name" {
  description = "API and gateway id (also the config id prefix)."
  type        = string
}

variable "labels" {
  description = "Labels for the API, config and gateway."
  type        = map(string)
  default     = {}
}

variable "openapi_template" {
  description = "Path of the generated Swagger 2.0 template (terraform/api/openapi.yaml)."
  type        = string
}

variable "backends" {
  description = "HTTP function name (manifest name) -> HTTPS URI of the function."
  type        = map(string)
}

variable "gateway_service_account" {
  description = "Email of the account the gateway calls backends as."
  type        = string
}

variable "jwt_issuer" {
  description = "JWT issuer the gateway accepts."
  type        = string
}

variable "jwt_jwks_uri" {
  description = "JWKS URI of the issuer."
  type        = string
}

variable "jwt_audiences" {
  description = "Accepted JWT audiences (comma-separated string)."
  type        = string
}

variable "api_token_issuer" {
  description = "Issuer of tokens exchanged for API keys: the token-issuer service account's email."
  type        = string
}

variable "api_token_jwks_uri" {
  description = "JWKS URI of the token-issuer account (Google publishes its public keys)."
  type        = string
}

variable "api_token_audiences" {
  description = "Accepted audiences of tokens exchanged for API keys (comma-separated string)."
  type        = string
}
