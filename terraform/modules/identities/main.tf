# Shared identities. Each function also gets its own runtime service account (modules/function);
# these are the identities that *call* functions or build them, never the ones functions run as.

locals {
  prefix = var.environment
}

# API Gateway calls the HTTP functions as this account (run.invoker on each HTTP function only).
resource "google_service_account" "gateway" {
  project      = var.project_id
  account_id   = "${local.prefix}-gateway"
  display_name = "promptopt ${var.environment}: API Gateway backend caller"
  description  = "API Gateway signs backend requests as this account; it may invoke HTTP functions only."
}

# Cloud Tasks puts an OIDC token of this account on every task; only task functions trust it.
resource "google_service_account" "tasks" {
  project      = var.project_id
  account_id   = "${local.prefix}-tasks-invoker"
  display_name = "promptopt ${var.environment}: Cloud Tasks invoker"
  description  = "OIDC identity of Cloud Tasks deliveries; run.invoker on task functions only."
}

# Pub/Sub push subscriptions authenticate to their function with this account.
resource "google_service_account" "pubsub_push" {
  project      = var.project_id
  account_id   = "${local.prefix}-pubsub-push"
  display_name = "promptopt ${var.environment}: Pub/Sub push invoker"
  description  = "OIDC identity of Pub/Sub push deliveries; run.invoker on Pub/Sub functions only."
}

# Eventarc (storage events) delivers as this account.
resource "google_service_account" "eventarc" {
  project      = var.project_id
  account_id   = "${local.prefix}-eventarc"
  display_name = "promptopt ${var.environment}: Eventarc trigger"
  description  = "Identity of Eventarc triggers; receives events and invokes storage functions only."
}

# API tokens (POST /api/v1/auth/token) are signed as this account through IAM signJwt: Google holds
# its keys and publishes them at .../service_accounts/v1/metadata/jwk/<email>, which the gateway
# trusts as a second issuer. It holds no roles; only the exchange function may sign as it
# (modules/function, sign_tokens).
resource "google_service_account" "api_tokens" {
  project      = var.project_id
  account_id   = "${local.prefix}-api-tokens"
  display_name = "promptopt ${var.environment}: API token issuer"
  description  = "Issuer of tokens exchanged for API keys (signJwt); holds no roles and no keys."
}

# Cloud Build builds each function's container as this account instead of a default account.
resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${local.prefix}-fn-build"
  display_name = "promptopt ${var.environment}: function builds"
  description  = "Builds Cloud Functions sources (reads the source object, writes the image and logs)."
}

# why: Eventarc requires its trigger identity to hold eventReceiver to accept events for delivery.
resource "google_project_iam_member" "eventarc_receiver" {
  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = "serviceAccount:${google_service_account.eventarc.email}"
}

# The build account gets the minimum a Cloud Functions build needs, instead of the broad
# roles/cloudbuild.builds.builder (which includes service-account impersonation).
# why: write build logs.
resource "google_project_iam_member" "build_log_writer" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.build.email}"
}

# why: push the function's container image to the gcf-artifacts repository.
resource "google_project_iam_member" "build_artifact_writer" {
  project = var.project_id
  role    = "roles/artifactregistry.writer"
  member  = "serviceAccount:${google_service_account.build.email}"
}

# why: a gen2 build fetches its source from the Google-managed gcf-v2-sources-<number>-<region>
# bucket (Cloud Functions copies our zip there), not from our sources bucket. That bucket is
# created by Google on the first deploy, so a bucket-level grant cannot exist before the build
# needs it; the role is granted on the project, as the provider's "Cloudfunctions2 Basic Builder"
# example does (hashicorp/terraform-provider-google#20571). Read-only: the build never writes objects.
resource "google_project_iam_member" "build_object_viewer" {
  project = var.project_id
  role    = "roles/storage.objectViewer"
  member  = "serviceAccount:${google_service_account.build.email}"
}

# why: the Pub/Sub service agent mints the OIDC tokens of push deliveries for pubsub_push.
resource "google_service_account_iam_member" "pubsub_agent_token_creator" {
  service_account_id = google_service_account.pubsub_push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${var.pubsub_service_agent}"
}

# why: Cloud Storage publishes object events to Pub/Sub for Eventarc; needed only when some
# function has a storage trigger.
resource "google_project_iam_member" "storage_agent_publisher" {
  count = var.enable_storage_events ? 1 : 0

  project = var.project_id
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${var.storage_service_agent}"
}
