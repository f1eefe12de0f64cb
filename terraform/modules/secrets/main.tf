# Secret containers only. Values are added out of band (`gcloud secrets versions add`), so no
# secret value ever passes through Terraform variables, state or CI logs. Functions are granted
# access per secret in modules/function, for exactly the secrets their manifest lists.
#
# Secret ids carry the environment (<environment>-<logical id>) so two environments can share a
# project. A function cannot start while a secret it mounts has no version, so scripts/deploy
# creates these containers first and stops until each one has a value (terraform/README.md).
resource "google_secret_manager_secret" "this" {
  for_each = toset(var.secret_ids)

  project   = var.project_id
  secret_id = "${var.environment}-${each.value}"
  labels    = var.labels

  replication {
    auto {}
  }

  lifecycle {
    prevent_destroy = true
  }
}
