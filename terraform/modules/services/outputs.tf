output "enabled" {
  description = "The enabled service names (depend on this to order API use after enablement)."
  value       = [for s in google_project_service.this : s.service]
}

output "pubsub_service_agent" {
  description = "Email of the project's Pub/Sub service agent (exists once this is known)."
  value       = google_project_service_identity.pubsub.email
}

output "eventarc_service_agent" {
  description = "Email of the project's Eventarc service agent."
  value       = google_project_service_identity.eventarc.email
}

output "storage_service_agent" {
  description = "Email of the project's Cloud Storage service agent."
  value       = data.google_storage_project_service_account.this.email_address
}
