output "gateway_url" {
  description = "Public base URL of the API."
  value       = module.promptopt.gateway_url
}

output "datasets_bucket" {
  description = "Drop dataset files here."
  value       = module.promptopt.datasets_bucket
}

output "artifacts_bucket" {
  description = "Bucket for large outputs."
  value       = module.promptopt.artifacts_bucket
}

output "sources_bucket" {
  description = "Bucket of function source zips."
  value       = module.promptopt.sources_bucket
}

output "queues" {
  description = "Cloud Tasks queues."
  value       = module.promptopt.queues
}

output "topics" {
  description = "Pub/Sub topics."
  value       = module.promptopt.topics
}

output "functions" {
  description = "Deployed functions."
  value       = module.promptopt.functions
}

output "service_accounts" {
  description = "Shared caller identities."
  value       = module.promptopt.service_accounts
}
