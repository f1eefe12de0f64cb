output "gateway_url" {
  description = "Public base URL of the API (https://...)."
  value       = module.gateway.url
}

output "api_config_id" {
  description = "The live API Gateway config id."
  value       = module.gateway.api_config_id
}

output "functions" {
  description = "Manifest name -> deployed function name, trigger type and runtime service account."
  value = {
    for k, f in merge(module.task_function, module.function) : k => {
      name            = f.name
      trigger         = f.trigger_type
      service_account = f.service_account_email
    }
  }
}

output "datasets_bucket" {
  description = "Drop dataset files here to ingest them."
  value       = module.data.datasets_bucket
}

output "artifacts_bucket" {
  description = "Bucket for large outputs."
  value       = module.data.artifacts_bucket
}

output "sources_bucket" {
  description = "Bucket of function source zips."
  value       = module.data.sources_bucket
}

output "firestore_database" {
  description = "Firestore database id (promptopt-<environment>; PROMPTOPT_FIRESTORE_DATABASE)."
  value       = module.data.firestore_database
}

output "queues" {
  description = "Logical queue name -> Cloud Tasks queue name."
  value       = module.messaging.queue_names
}

output "topics" {
  description = "Logical topic name -> Pub/Sub topic name."
  value       = module.messaging.topic_names
}

output "secrets" {
  description = "Logical secret id -> Secret Manager secret id (<environment>-<id>); add a version to each before functions start."
  value       = module.secrets.names
}

output "scheduler_jobs" {
  description = "Cloud Scheduler job names."
  value       = module.messaging.scheduler_jobs
}

output "service_accounts" {
  description = "Shared caller identities."
  value = {
    gateway     = module.identities.gateway_email
    tasks       = module.identities.tasks_email
    pubsub_push = module.identities.pubsub_push_email
    eventarc    = module.identities.eventarc_email
    build       = module.identities.build_email
  }
}

output "dashboard_url" {
  description = "The web UI: the route of the function serving a wildcard path (GET /<prefix>/{path=**}), on the gateway."
  value = one([
    for f in local.bundled_manifests : "${module.gateway.url}${trimsuffix(f.trigger.path, "{path=**}")}"
    if try(f.trigger.type == "http" && endswith(f.trigger.path, "{path=**}"), false)
  ])
}

output "firebase_web_config" {
  description = "The Firebase web app configuration the web UI signs in with (public values)."
  value       = local.firebase_web_config
}
