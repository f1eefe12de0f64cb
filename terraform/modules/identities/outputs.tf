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

output "api_tokens_email" {
  description = "The API-token issuer account (its email is the tokens' iss)."
  value       = google_service_account.api_tokens.email
}

output "api_tokens_name" {
  description = "Fully qualified name of the API-token issuer account (for the signJwt grant)."
  value       = google_service_account.api_tokens.name
}

output "build_id" {
  description = "Fully qualified id of the function build service account."
  value       = google_service_account.build.id
}

output "build_email" {
  description = "Function build service account."
  value       = google_service_account.build.email
}

output "grants" {
  description = "Id of every role grant above: functions wait for these (and for IAM propagation) before they are created."
  value = merge(
    {
      eventarc_receiver          = google_project_iam_member.eventarc_receiver.id
      build_log_writer           = google_project_iam_member.build_log_writer.id
      build_artifact_writer      = google_project_iam_member.build_artifact_writer.id
      build_object_viewer        = google_project_iam_member.build_object_viewer.id
      pubsub_agent_token_creator = google_service_account_iam_member.pubsub_agent_token_creator.id
    },
    { for i, g in google_project_iam_member.storage_agent_publisher : "storage_agent_publisher_${i}" => g.id },
  )
}
