# One deployed function, driven by its manifest (functions/<name>/function.yaml as the builder
# validated it, plus the names modules/manifest derives). The root module instantiates this once per manifest with for_each; nothing
# here names a particular function.
#
# Per function: its own runtime service account holding exactly the manifest's roles, the source
# zip named by its content hash, the gen2 function, exactly one invoker binding (the identity of
# its trigger), secret accessor bindings for the manifest's secrets, and for Pub/Sub-driven
# functions a push subscription with a dead-letter topic.

locals {
  f            = var.spec
  trigger_type = local.f.trigger_type

  # Platform wiring wins over the manifest's env so a manifest cannot point a function elsewhere.
  # THREADS: functions-framework's gunicorn serves cpu*4 requests at once by default; match the
  # instance's request concurrency so requests are not queued inside one instance.
  # PYDANTIC_DISABLE_PLUGINS: no function uses a pydantic plugin, and looking for one reads every
  # installed distribution's entry points when the first model is built, in every cold start
  # (promptopt.manifest.RUNTIME_ENV, which the local stack sets too).
  # PROMPTOPT_GC_PAUSED_UNTIL_SERVING: the garbage collector waits until the instance has answered
  # once (promptopt.startup): a cold start builds a large heap and makes almost no garbage.
  environment_variables = merge(local.f.env, var.platform_env, {
    THREADS                           = tostring(local.f.resources.concurrency)
    PYDANTIC_DISABLE_PLUGINS          = "__all__"
    PROMPTOPT_GC_PAUSED_UNTIL_SERVING = "1"
  })

  is_http    = local.trigger_type == "http"
  is_pubsub  = contains(["pubsub", "scheduler"], local.trigger_type)
  is_storage = local.trigger_type == "storage"

  # The single identity allowed to invoke this function: the caller its trigger uses.
  invoker = {
    http      = var.gateway_service_account
    task      = var.tasks_service_account
    pubsub    = var.pubsub_push_service_account
    scheduler = var.pubsub_push_service_account
    storage   = var.eventarc_service_account
  }[local.trigger_type]

  primitive_roles = ["roles/owner", "roles/editor", "roles/viewer"]
  enqueues_tasks  = contains(keys(local.f.roles), "roles/cloudtasks.enqueuer")
}

resource "google_service_account" "this" {
  project      = var.project_id
  account_id   = local.f.account_id
  display_name = "promptopt ${var.environment}: ${local.f.name}"
  # The console then shows why the account holds each role (from the manifest's `why`).
  description = substr(join(" ", concat(
    ["Runtime identity of ${local.f.name}."],
    [for role, why in local.f.roles : "${role}: ${why}."],
  )), 0, 256)

  lifecycle {
    precondition {
      condition     = length(setintersection(keys(local.f.roles), local.primitive_roles)) == 0
      error_message = "${local.f.name}: primitive roles (owner/editor/viewer) are not allowed in function.yaml."
    }
  }
}

# Exactly the manifest's roles (local.f.roles is role => why); the reason for each grant is the
# manifest entry's `why`, e.g. roles/datastore.user: "reads and writes this tenant's documents".
resource "google_project_iam_member" "roles" {
  for_each = local.f.roles

  project = var.project_id
  role    = each.key
  member  = "serviceAccount:${google_service_account.this.email}"
}

# Storage roles on the one bucket the manifest names (e.g. read the datasets bucket), never the
# project's every bucket; the reason is the manifest entry's `why`.
resource "google_storage_bucket_iam_member" "bucket_roles" {
  for_each = local.f.bucket_roles

  bucket = var.buckets[each.value.bucket]
  role   = each.value.role
  member = "serviceAccount:${google_service_account.this.email}"
}

# why: a function that hands out signed URLs signs them as itself through IAM signBlob (Cloud
# Functions has no private key), which needs token creation on its own account only.
resource "google_service_account_iam_member" "sign_as_self" {
  count = local.f.sign_urls ? 1 : 0

  service_account_id = google_service_account.this.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${google_service_account.this.email}"
}

# why: the token exchange signs API tokens as the platform's token issuer through IAM signJwt
# (no private key exists outside Google), which needs token creation on that one account only.
resource "google_service_account_iam_member" "sign_api_tokens" {
  count = local.f.sign_tokens ? 1 : 0

  service_account_id = var.api_tokens_service_account_name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${google_service_account.this.email}"
}

# Only the secrets this function's manifest lists, each readable by this function only.
resource "google_secret_manager_secret_iam_member" "access" {
  for_each = local.f.secrets

  project   = var.project_id
  secret_id = var.secret_ids[each.value.secret]
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.this.email}"
}

# why: a function that enqueues Cloud Tasks sets the tasks invoker account as the task's OIDC
# identity, which requires actAs on that one account (not on the project).
resource "google_service_account_iam_member" "act_as_tasks_invoker" {
  count = local.enqueues_tasks ? 1 : 0

  service_account_id = var.tasks_service_account_name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.this.email}"
}

# The bundle staged by scripts/build (build/<name>/), zipped with fixed file modes so the hash
# depends on content only.
data "archive_file" "source" {
  type             = "zip"
  source_dir       = var.source_dir
  output_path      = "${var.zip_dir}/${local.f.name}.zip"
  output_file_mode = "0644"
}

# Named by content hash: a changed bundle is a new object, which changes the function's source
# and redeploys it; an unchanged bundle leaves the function alone.
resource "google_storage_bucket_object" "source" {
  bucket       = var.sources_bucket
  name         = "${local.f.deploy_name}/${local.f.name}-${data.archive_file.source.output_md5}.zip"
  source       = data.archive_file.source.output_path
  content_type = "application/zip"
}

# IAM grants take effect some time after the API accepts them. Creating the function right after
# its grants fails intermittently: the build cannot read its source, the revision cannot read its
# secrets, the storage trigger is rejected. So the function waits for every grant it relies on,
# its own and the shared ones (build account, Eventarc receiver, storage agent publisher, Pub/Sub
# agent token creator), and then for propagation, as the provider's Cloud Functions examples do
# (time_sleep after the builder's grants). A changed grant re-runs the wait (triggers).
resource "time_sleep" "iam_propagation" {
  create_duration = var.iam_wait

  triggers = merge(
    var.shared_grants,
    { for k, g in google_project_iam_member.roles : "project ${k}" => g.id },
    { for k, g in google_storage_bucket_iam_member.bucket_roles : "bucket ${k}" => g.etag },
    { for k, g in google_secret_manager_secret_iam_member.access : "secret ${k}" => g.etag },
    { for i, g in google_service_account_iam_member.sign_as_self : "sign_as_self" => g.etag },
    { for i, g in google_service_account_iam_member.sign_api_tokens : "sign_api_tokens" => g.etag },
    { for i, g in google_service_account_iam_member.act_as_tasks_invoker : "act_as_tasks_invoker" => g.etag },
  )
}

resource "google_cloudfunctions2_function" "this" {
  #checkov:skip=CKV_GCP_124:HTTP functions must accept API Gateway traffic from the internet; IAM (run.invoker for the gateway account only) is the gate, and every other function is ALLOW_INTERNAL_ONLY.
  project     = var.project_id
  location    = var.region
  name        = local.f.deploy_name
  description = local.f.description
  labels      = merge(var.labels, { function = replace(local.f.name, "_", "-"), trigger = local.trigger_type })

  build_config {
    runtime         = var.runtime
    entry_point     = local.f.entry_point
    service_account = var.build_service_account

    source {
      storage_source {
        bucket = var.sources_bucket
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    service_account_email = google_service_account.this.email
    # HTTP endpoints are reached by API Gateway over the internet (IAM still limits callers to the
    # gateway's account); everything else is called by Google services counted as internal.
    ingress_settings                 = local.is_http ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision   = true
    available_memory                 = local.f.resources.memory
    available_cpu                    = local.f.resources.cpu
    timeout_seconds                  = local.f.resources.timeout_s
    min_instance_count               = local.f.resources.min_instances
    max_instance_count               = local.f.resources.max_instances
    max_instance_request_concurrency = local.f.resources.concurrency
    environment_variables            = local.environment_variables

    dynamic "secret_environment_variables" {
      for_each = local.f.secrets
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        # The secret's id in Secret Manager (<environment>-<logical id>), not its full name.
        secret  = var.secret_names[secret_environment_variables.value.secret]
        version = secret_environment_variables.value.version
      }
    }
  }

  # Storage events arrive through Eventarc, retried until they succeed, delivered as the Eventarc
  # account (the only invoker of this function).
  dynamic "event_trigger" {
    for_each = local.is_storage ? [local.f] : []
    content {
      trigger_region        = var.region
      event_type            = event_trigger.value.event_type
      retry_policy          = "RETRY_POLICY_RETRY"
      service_account_email = var.eventarc_service_account

      event_filters {
        attribute = "bucket"
        value     = var.buckets[event_trigger.value.bucket]
      }
    }
  }

  depends_on = [
    google_project_iam_member.roles,
    google_storage_bucket_iam_member.bucket_roles,
    google_secret_manager_secret_iam_member.access,
    time_sleep.iam_propagation,
  ]
}

# The only principal allowed to call the function (run.invoker on its Cloud Run service).
resource "google_cloud_run_service_iam_member" "invoker" {
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.this.service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${local.invoker}"
}

# Pub/Sub (and scheduler tick) functions: a push subscription we own, so that it carries a
# dead-letter topic and an exponential retry policy (a subscription created implicitly by an
# Eventarc trigger cannot be given either from Terraform). The push is OIDC-authenticated as the
# push account; functions-framework turns the push envelope into a CloudEvent.
resource "google_pubsub_subscription" "push" {
  count = local.is_pubsub ? 1 : 0

  project                    = var.project_id
  name                       = "${local.f.deploy_name}-push"
  topic                      = var.topic_ids[local.f.topic]
  ack_deadline_seconds       = min(600, max(10, local.f.resources.timeout_s))
  message_retention_duration = "604800s"
  labels                     = var.labels

  push_config {
    push_endpoint = google_cloudfunctions2_function.this.service_config[0].uri

    oidc_token {
      service_account_email = var.pubsub_push_service_account
      audience              = google_cloudfunctions2_function.this.service_config[0].uri
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = var.dead_letter_topic_ids[local.f.topic]
    max_delivery_attempts = var.max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_cloud_run_service_iam_member.invoker]
}

# why: to dead-letter a message, the Pub/Sub service agent must be able to acknowledge it here.
resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  count = local.is_pubsub ? 1 : 0

  project      = var.project_id
  subscription = google_pubsub_subscription.push[0].name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${var.pubsub_service_agent}"
}
