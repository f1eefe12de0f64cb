# The Google APIs the platform uses, and the Google-managed service agents it grants roles to.
# Disabling an API on destroy would break anything else in the project that relies on it, so
# destroy leaves them enabled.
resource "google_project_service" "this" {
  for_each = toset(var.services)

  project                    = var.project_id
  service                    = each.value
  disable_on_destroy         = false
  disable_dependent_services = false
}

# Service agents are created lazily by Google; on a fresh project a grant to an agent that does not
# exist yet fails. google_project_service_identity creates the agent (a no-op when it exists) and
# returns its address, instead of building it from the project number by hand.
# (hashicorp/terraform-provider-google website/docs/r/project_service_identity.html.markdown:
# beta provider; attribute `email`.)
#
# Pub/Sub's agent: mints push OIDC tokens, publishes dead letters, acknowledges what it dead-letters.
resource "google_project_service_identity" "pubsub" {
  provider = google-beta

  project = var.project_id
  service = "pubsub.googleapis.com"

  depends_on = [google_project_service.this]
}

# Eventarc's agent validates a storage trigger's bucket when the trigger is created; creating it
# up front keeps the first storage trigger from racing its creation.
resource "google_project_service_identity" "eventarc" {
  provider = google-beta

  project = var.project_id
  service = "eventarc.googleapis.com"

  depends_on = [google_project_service.this]
}

# Cloud Storage's agent publishes object events for Eventarc. Reading this data source calls the
# API that creates the agent if needed.
data "google_storage_project_service_account" "this" {
  project = var.project_id

  depends_on = [google_project_service.this]
}
