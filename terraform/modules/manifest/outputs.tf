output "functions" {
  description = "Folder name -> function spec: the builder's manifest plus derived names and role maps."
  value       = local.functions

  precondition {
    condition     = length(local.missing_bundles) == 0
    error_message = "No build/<name>/function.json for ${join(", ", local.missing_bundles)}: run scripts/build before terraform (scripts/deploy does)."
  }
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

output "task_functions" {
  description = "Folder names of the Cloud Tasks targets (deployed before the functions that enqueue to them)."
  value       = [for k, f in local.functions : k if f.trigger_type == "task"]
}

output "topics" {
  description = "Every topic to create: exactly those a pubsub or scheduler function consumes."
  value       = local.topics
}

output "queues" {
  description = "Every Cloud Tasks queue: the platform's plus those task manifests name."
  value       = local.queues
}

output "schedules" {
  description = "Cloud Scheduler jobs by name (one per scheduler manifest)."
  value       = local.schedules
}

output "secret_ids" {
  description = "Logical ids of every secret to create: the platform's plus those manifests mount."
  value       = local.secret_ids
}

output "has_storage_triggers" {
  description = "Whether any function is triggered by Cloud Storage events."
  value       = anytrue([for f in local.functions : f.trigger_type == "storage"])
}
