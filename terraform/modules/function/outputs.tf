output "name" {
  description = "Deployed function name."
  value       = google_cloudfunctions2_function.this.name
}

output "uri" {
  description = "run.app URL of the function's Cloud Run service (service_config[0].uri), not its cloudfunctions.net URL."
  value       = google_cloudfunctions2_function.this.service_config[0].uri
}

output "service_account_email" {
  description = "The function's own runtime service account."
  value       = google_service_account.this.email
}

output "trigger_type" {
  description = "http, pubsub, storage, task or scheduler."
  value       = local.trigger_type
}

output "source_object" {
  description = "Source zip object (its name carries the content hash)."
  value       = google_storage_bucket_object.source.name
}
