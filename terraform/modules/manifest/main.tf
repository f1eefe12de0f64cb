# Pure logic, no providers: turns the decoded manifests (functions/*/function.yaml, read by the
# root module with fileset + yamldecode) into uniform per-function specs with defaults applied
# (mirroring shared/promptopt/manifest.py), and derives the topics, queues, schedules and secrets
# they reference. Being provider-free, tests/infra evaluates it with the real terraform binary.

locals {
  resource_defaults = { memory = "256Mi", cpu = "1", timeout_s = 60, min_instances = 0, max_instances = 10, concurrency = 80 }

  functions = {
    for key, m in var.manifests : key => {
      folder       = key
      name         = m.name
      description  = m.description
      entry_point  = try(m.entry_point, "handle")
      trigger_type = m.trigger.type
      # Trigger details, null where they do not apply (only the selected branch is evaluated).
      topic      = contains(["pubsub", "scheduler"], m.trigger.type) ? m.trigger.topic : null
      queue      = m.trigger.type == "task" ? m.trigger.queue : null
      bucket     = m.trigger.type == "storage" ? m.trigger.bucket : null
      event_type = m.trigger.type == "storage" ? try(m.trigger.event_type, "google.cloud.storage.object.v1.finalized") : null
      schedule   = m.trigger.type == "scheduler" ? m.trigger.schedule : null
      time_zone  = m.trigger.type == "scheduler" ? try(m.trigger.time_zone, "Etc/UTC") : null

      deploy_name = "${var.environment}-${replace(m.name, "_", "-")}"
      # Service account ids are 6-30 characters; long names keep a readable head plus a hash.
      account_id = (
        length("${var.environment}-fn-${replace(m.name, "_", "-")}") <= 30
        ? "${var.environment}-fn-${replace(m.name, "_", "-")}"
        : "${trimsuffix(substr("${var.environment}-fn-${replace(m.name, "_", "-")}", 0, 23), "-")}-${substr(sha1("${var.environment}-fn-${replace(m.name, "_", "-")}"), 0, 6)}"
      )

      resources = merge(local.resource_defaults, try(m.resources, {}))
      env       = { for k, v in try(m.env, {}) : k => tostring(v) }
      secrets   = { for s in try(m.secrets, []) : s.env => { secret = s.secret, version = tostring(try(s.version, "latest")) } }
      # role => why: every role a function holds comes with the manifest's reason.
      roles = { for r in try(m.roles, []) : r.role => r.why }
      # "bucket/role" => { bucket, role, why }: roles on one platform bucket, not the project.
      bucket_roles = { for r in try(m.bucket_roles, []) : "${r.bucket}/${r.role}" => r }
      sign_urls    = try(m.sign_urls, false)
    }
  }

  http_functions = [for k, f in local.functions : k if f.trigger_type == "http"]

  topics = distinct(concat(var.base_topics, [for f in local.functions : f.topic if f.topic != null]))

  queues = merge({ for f in local.functions : f.queue => {} if f.queue != null }, var.base_queues)

  # The platform tick (unless schedule_tick is null) plus one job per scheduler manifest.
  schedules = merge(
    { for k, v in { "schedule-tick" = var.schedule_tick } : k => merge(v, { topic = "schedule-tick" }) if v != null },
    {
      for k, f in local.functions : "fn-${replace(k, "_", "-")}" => {
        schedule  = f.schedule
        topic     = f.topic
        time_zone = f.time_zone
      } if f.trigger_type == "scheduler"
    },
  )

  secret_ids = distinct(concat(var.base_secrets, flatten([for f in local.functions : [for s in values(f.secrets) : s.secret]])))

  trigger_types   = ["http", "pubsub", "storage", "task", "scheduler"]
  primitive_roles = ["roles/owner", "roles/editor", "roles/viewer"]
}
