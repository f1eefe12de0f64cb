# Secret containers only. Values are added out of band (`gcloud secrets versions add`), so no
# secret value ever passes through Terraform variables, state or CI logs. Functions are granted
# access per secret in modules/function, for exactly the secrets their manifest lists.
resource "google_secret_manager_secret" "this" {
  for_each = toset(var.secret_ids)

  project   = var.project_id
  secret_id = each.value
  labels    = var.labels

  replication {
    auto {}
  }

  lifecycle {
    prevent_destroy = true
  }
}
