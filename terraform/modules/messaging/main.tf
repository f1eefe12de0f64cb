# Asynchronous plumbing: the Cloud Tasks queues (global model rate limits), the Pub/Sub topics
# that chain experiment steps, each with a dead-letter topic, and the Cloud Scheduler jobs.

locals {
  prefix = var.environment
}

# Queue-enforced rate limits: every model call of a batch goes through here, so the dispatch
# rate is global however many instances run. Cloud Tasks has no dead-letter queue; handlers
# write a terminal record on the last attempt (X-CloudTasks-TaskRetryCount).
resource "google_cloud_tasks_queue" "this" {
  for_each = var.queues

  project  = var.project_id
  location = var.region
  name     = "${local.prefix}-${each.key}"

  rate_limits {
    max_dispatches_per_second = each.value.max_dispatches_per_second
    max_concurrent_dispatches = each.value.max_concurrent_dispatches
  }

  retry_config {
    max_attempts       = each.value.max_attempts
    max_retry_duration = each.value.max_retry_duration
    min_backoff        = each.value.min_backoff
    max_backoff        = each.value.max_backoff
    max_doublings      = each.value.max_doublings
  }

  stackdriver_logging_config {
    sampling_ratio = each.value.log_sampling_ratio
  }
}

resource "google_pubsub_topic" "this" {
  #checkov:skip=CKV_GCP_83:Messages carry ids and counters only (no prompts or user data); Google-managed encryption suffices.
  for_each = toset(var.topics)

  project                    = var.project_id
  name                       = "${local.prefix}-${each.value}"
  labels                     = var.labels
  message_retention_duration = "86400s"
}

# Topics for people and their tools, not for our functions: nothing here consumes them, so they
# have no push subscription and no dead-letter topic. experiment-alerts carries regressed
# scheduled runs; subscribe an email relay, a chat webhook or an alert policy to it.
resource "google_pubsub_topic" "notification" {
  #checkov:skip=CKV_GCP_83:Alerts carry ids, a status and a short reason (no prompts or user data); Google-managed encryption suffices.
  for_each = toset(var.notification_topics)

  project                    = var.project_id
  name                       = "${local.prefix}-${each.value}"
  labels                     = var.labels
  message_retention_duration = "604800s"
}

# Where a message goes after max_delivery_attempts failed pushes.
resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Dead letters are copies of the ids-only messages above; Google-managed encryption suffices.
  for_each = toset(var.topics)

  project = var.project_id
  name    = "${local.prefix}-${each.value}-dead-letter"
  labels  = var.labels
}

# A dead-letter topic without a subscription drops what it receives; this pull subscription keeps
# dead letters for inspection and replay. It is the end of the line, so it has no dead-letter
# policy of its own (the infra tests exempt exactly this resource).
resource "google_pubsub_subscription" "dead_letter" {
  for_each = toset(var.topics)

  project                    = var.project_id
  name                       = "${local.prefix}-${each.value}-dead-letter-hold"
  topic                      = google_pubsub_topic.dead_letter[each.key].id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  retain_acked_messages      = false
  labels                     = var.labels

  expiration_policy {
    ttl = ""
  }
}

# why: Pub/Sub forwards undeliverable messages as its service agent, which must publish here.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = toset(var.topics)

  project = var.project_id
  topic   = google_pubsub_topic.dead_letter[each.key].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${var.pubsub_service_agent}"
}

# Cron ticks published to a topic; the subscribed function decides what is due.
resource "google_cloud_scheduler_job" "this" {
  for_each = var.schedules

  project     = var.project_id
  region      = var.region
  name        = "${local.prefix}-${each.key}"
  description = "Publishes a tick to ${each.value.topic}"
  schedule    = each.value.schedule
  time_zone   = each.value.time_zone

  retry_config {
    retry_count          = 3
    min_backoff_duration = "10s"
    max_backoff_duration = "120s"
  }

  pubsub_target {
    topic_name = google_pubsub_topic.this[each.value.topic].id
    data       = base64encode(jsonencode({ schedule = each.key }))
  }
}
