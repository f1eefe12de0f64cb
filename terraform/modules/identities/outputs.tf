output "gateway_email" {
  description = "API Gateway backend service account."
  value       = google_service_account.gateway.email
}

output "tasks_email" {
  description = "Cloud Tasks OIDC service account."
  value       = google_service_account.tasks.email
}

output "tasks_name" {
  description = "Fully qualified name of the Cloud Tasks OIDC service account (for actAs grants)."
  value       = google_service_account.tasks.name
}

output "pubsub_push_email" {
  description = "Pub/Sub push OIDC service account."
  value       = google_service_account.pubsub_push.email
}

output "eventarc_email" {
  description = "Eventarc trigger service account."
  value       = google_service_account.eventarc.email
}

output "build_id" {
  description = "Fully qualified id of the function build service account."
  value       = google_service_account.build.id
}

output "build_email" {
  description = "Function build service account."
  value       = google_service_account.build.email
}
