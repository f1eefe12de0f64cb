output "ids" {
  description = "Map secret id -> fully qualified secret resource id."
  value       = { for k, s in google_secret_manager_secret.this : k => s.id }
}
