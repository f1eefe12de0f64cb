# Pure logic, no providers. Its input is what the bundle builder wrote for every function:
# build/<name>/function.json, the manifest (functions/<name>/function.yaml) validated and with every
# default applied by shared/promptopt/manifest.py. Nothing is normalised again here; this module
# only derives values (deployed names, account ids, role maps) and the topics, queues, schedules
# and secrets the functions reference. Being provider-free, tests/infra evaluates it with the real
# terraform binary.

locals {
  functions = {
    for key, m in var.functions : key => {
      name         = m.name
      description  = m.description
      entry_point  = m.entry_point
      trigger_type = m.trigger.type
      # Trigger details, null where they do not apply.
      topic      = m.trigger.topic
      queue      = m.trigger.queue
      bucket     = m.trigger.bucket
      event_type = m.trigger.event_type
      schedule   = m.trigger.schedule
      time_zone  = m.trigger.time_zone

      deploy_name = "${var.environment}-${replace(m.name, "_", "-")}"
      # Service account ids are 6-30 characters; long names keep a readable head plus a hash.
      account_id = (
        length("${var.environment}-fn-${replace(m.name, "_", "-")}") <= 30
        ? "${var.environment}-fn-${replace(m.name, "_", "-")}"
        : "${trimsuffix(substr("${var.environment}-fn-${replace(m.name, "_", "-")}", 0, 23), "-")}-${substr(sha1("${var.environment}-fn-${replace(m.name, "_", "-")}"), 0, 6)}"
      )

      resources = m.resources
      env       = m.env
      # env var => { secret (logical id, as the manifest names it), version }.
      secrets = { for s in m.secrets : s.env => { secret = s.secret, version = s.version } }
      # role => why: every role a function holds comes with the manifest's reason.
      roles = { for r in m.roles : r.role => r.why }
      # "bucket/role" => { bucket, role, why }: roles on one platform bucket, not the project.
      bucket_roles = { for r in m.bucket_roles : "${r.bucket}/${r.role}" => r }
      sign_urls    = m.sign_urls
      sign_tokens  = m.sign_tokens
    }
  }

  http_functions = [for k, f in local.functions : k if f.trigger_type == "http"]

  # Only topics some function consumes: a message published to a topic without a subscription is
  # lost, so a topic exists exactly when a pubsub or scheduler function reads it. A publisher
  # whose topic does not exist finds no entry in PROMPTOPT_TOPICS and skips the publish.
  topics = sort(distinct([for f in local.functions : f.topic if f.topic != null]))

  queues = merge({ for f in local.functions : f.queue => {} if f.queue != null }, var.base_queues)

  # One Cloud Scheduler job per scheduler manifest (each publishes to the topic its function reads).
  schedules = {
    for k, f in local.functions : "fn-${replace(k, "_", "-")}" => {
      schedule  = f.schedule
      topic     = f.topic
      time_zone = f.time_zone
    } if f.trigger_type == "scheduler"
  }

  secret_ids = sort(distinct(concat(var.base_secrets, flatten([for f in local.functions : [for s in values(f.secrets) : s.secret]]))))

  missing_bundles = sort(tolist(setsubtract(var.manifest_folders, keys(var.functions))))

  trigger_types   = ["http", "pubsub", "storage", "task", "scheduler"]
  primitive_roles = ["roles/owner", "roles/editor", "roles/viewer"]
}
