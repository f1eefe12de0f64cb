output "ids" {
  description = "Logical secret id -> fully qualified secret resource id (projects/P/secrets/S)."
  value       = { for k, s in google_secret_manager_secret.this : k => s.id }
}

output "names" {
  description = "Logical secret id -> Secret Manager secret id (<environment>-<logical id>)."
  value       = { for k, s in google_secret_manager_secret.this : k => s.secret_id }
}
