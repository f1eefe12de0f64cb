output "url" {
  description = "Public base URL of the API."
  value       = "https://${google_api_gateway_gateway.this.default_hostname}"
}

output "host" {
  description = "Hostname of the gateway (the uptime check calls it)."
  value       = google_api_gateway_gateway.this.default_hostname
}

output "api_config_id" {
  description = "The live API config id (derived from the document hash)."
  value       = google_api_gateway_api_config.this.api_config_id
}

output "managed_service" {
  description = "The API's managed service name (enable it to use API keys)."
  value       = google_api_gateway_api.this.managed_service
}
