output "functions" {
  description = "Folder name -> normalised function spec (defaults applied)."
  value       = local.functions

  precondition {
    condition     = alltrue([for k, f in local.functions : f.name == k])
    error_message = "Every manifest's name must equal its folder name."
  }
  precondition {
    condition     = alltrue([for f in local.functions : contains(local.trigger_types, f.trigger_type)])
    error_message = "trigger.type must be one of http, pubsub, storage, task, scheduler."
  }
  precondition {
    condition     = alltrue([for f in local.functions : length(setintersection(keys(f.roles), local.primitive_roles)) == 0])
    error_message = "Primitive roles (roles/owner, roles/editor, roles/viewer) are not allowed in function.yaml."
  }
  precondition {
    condition     = length(distinct([for f in local.functions : f.account_id])) == length(local.functions)
    error_message = "Two functions map to the same service account id; rename one."
  }
}

output "http_functions" {
  description = "Folder names of the gateway-routed functions."
  value       = local.http_functions
}

output "topics" {
  description = "Every topic to create: the platform's plus those manifests subscribe to."
  value       = local.topics
}

output "queues" {
  description = "Every Cloud Tasks queue: the platform's plus those task manifests name."
  value       = local.queues
}

output "schedules" {
  description = "Cloud Scheduler jobs by name."
  value       = local.schedules
}

output "secret_ids" {
  description = "Every secret to create: the platform's plus those manifests list."
  value       = local.secret_ids
}

output "has_storage_triggers" {
  description = "Whether any function is triggered by Cloud Storage events."
  value       = anytrue([for f in local.functions : f.trigger_type == "storage"])
}
