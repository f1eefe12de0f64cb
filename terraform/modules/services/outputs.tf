output "enabled" {
  description = "The enabled service names (depend on this to order API use after enablement)."
  value       = [for s in google_project_service.this : s.service]
}
