# The Google APIs the platform uses. Disabling an API on destroy would break anything else in the
# project that relies on it, so destroy leaves them enabled.
resource "google_project_service" "this" {
  for_each = toset(var.services)

  project                    = var.project_id
  service                    = each.value
  disable_on_destroy         = false
  disable_dependent_services = false
}
