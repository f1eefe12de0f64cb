# API Gateway in front of the HTTP functions. The Swagger 2.0 document is generated from the
# manifests (terraform/api/openapi.yaml); here only the backend URIs and the JWT issuer are filled
# in. The gateway is the only public entry point: it validates JWTs and calls each backend as
# its own service account, which is the sole run.invoker of the HTTP functions.

locals {
  document = templatefile(var.openapi_template, {
    backends      = var.backends
    jwt_issuer    = var.jwt_issuer
    jwt_jwks_uri  = var.jwt_jwks_uri
    jwt_audiences = var.jwt_audiences
    # Tokens exchanged for API keys, signed by the token-issuer account (a second issuer).
    api_token_issuer    = var.api_token_issuer
    api_token_jwks_uri  = var.api_token_jwks_uri
    api_token_audiences = var.api_token_audiences
  })
  # API configs are immutable: a change to anything that defines one (its document or the account
  # the gateway calls backends as) must produce a new config id, created before the old one is
  # destroyed so the gateway always points at a live config. Hashing the document alone would
  # reuse the live id when only the account changes, and create_before_destroy would then collide.
  config_inputs = {
    document                = local.document
    gateway_service_account = var.gateway_service_account
  }
  config_id = "${var.name}-${substr(sha256(jsonencode(local.config_inputs)), 0, 12)}"
}

resource "google_api_gateway_api" "this" {
  provider = google-beta

  project      = var.project_id
  api_id       = var.name
  display_name = var.name
  labels       = var.labels
}

resource "google_api_gateway_api_config" "this" {
  provider = google-beta

  project       = var.project_id
  api           = google_api_gateway_api.this.api_id
  api_config_id = local.config_id
  display_name  = local.config_id
  labels        = var.labels

  openapi_documents {
    document {
      path     = "openapi.yaml"
      contents = base64encode(local.document)
    }
  }

  gateway_config {
    backend_config {
      google_service_account = var.gateway_service_account
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "google_api_gateway_gateway" "this" {
  provider = google-beta

  project      = var.project_id
  region       = var.region
  gateway_id   = var.name
  display_name = var.name
  api_config   = google_api_gateway_api_config.this.id
  labels       = var.labels
}
