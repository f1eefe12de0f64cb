# promptopt: everything one environment needs. Called by environments/<env>/main.tf.
#
# The function list is never written here. functions/<name>/function.yaml is the source of truth;
# scripts/build validates each one (shared/promptopt/manifest.py), applies its defaults and writes
# build/<name>/function.json into the bundle. Terraform reads those files, so the manifest is
# normalised once, in Python; modules/manifest only derives names and checks that every manifest
# was built. Task targets and the other functions are two calls of the same function module:
# the task targets come first so the functions that enqueue tasks can be told their run.app URLs.

locals {
  repo_root = coalesce(var.repo_root, "${path.module}/..")
  build_dir = "${local.repo_root}/build"
  zip_dir   = coalesce(var.zip_dir, "${local.build_dir}/zips/${var.environment}")

  # Which functions exist: every functions/<name>/function.yaml ...
  manifest_folders = toset([for f in fileset("${local.repo_root}/functions", "*/function.yaml") : dirname(f)])
  # ... as the builder validated and normalised it (bundles of removed functions are ignored).
  bundled_manifests = {
    for f in fileset(local.build_dir, "*/function.json") :
    dirname(f) => jsondecode(file("${local.build_dir}/${f}")) if contains(local.manifest_folders, dirname(f))
  }

  functions       = module.manifest.functions
  task_functions  = { for k, f in local.functions : k => f if f.trigger_type == "task" }
  other_functions = { for k, f in local.functions : k => f if f.trigger_type != "task" }

  labels = merge(var.labels, { app = "promptopt", environment = var.environment })

  jwt_issuer = coalesce(var.jwt_issuer, "https://securetoken.google.com/${var.project_id}")

  firebase_web_config = var.firebase_web_app ? {
    apiKey     = data.google_firebase_web_app_config.web_ui[0].api_key
    authDomain = data.google_firebase_web_app_config.web_ui[0].auth_domain
    projectId  = var.project_id
  } : null
  jwt_audiences = coalesce(var.jwt_audiences, var.project_id)

  # The second issuer: tokens the exchange signs for API keys, as the token-issuer account.
  api_token_issuer   = module.identities.api_tokens_email
  api_token_audience = "promptopt-${var.environment}-api"

  # What every function is told about its environment (read by promptopt.config as PROMPTOPT_*;
  # terraform/README.md lists them and tests/infra checks that the code reads each one).
  platform_env = {
    GOOGLE_CLOUD_PROJECT            = var.project_id
    PROMPTOPT_ENVIRONMENT           = var.environment
    PROMPTOPT_REGION                = var.region
    PROMPTOPT_FIRESTORE_DATABASE    = module.data.firestore_database
    PROMPTOPT_DATASETS_BUCKET       = module.data.datasets_bucket
    PROMPTOPT_ARTIFACTS_BUCKET      = module.data.artifacts_bucket
    PROMPTOPT_TOPICS                = jsonencode(module.messaging.topic_ids)
    PROMPTOPT_MAX_DELIVERY_ATTEMPTS = tostring(var.max_delivery_attempts)
    PROMPTOPT_QUEUES                = jsonencode(module.messaging.queue_ids)
    PROMPTOPT_TASKS_SERVICE_ACCOUNT = module.identities.tasks_email
    PROMPTOPT_LOG_LEVEL             = var.log_level
    PROMPTOPT_DEFAULT_MODEL         = var.default_model
    PROMPTOPT_API_TOKEN_ISSUER      = local.api_token_issuer
    PROMPTOPT_API_TOKEN_AUDIENCE    = local.api_token_audience
    PROMPTOPT_AUDIT_RETENTION_DAYS  = tostring(var.audit_retention_days)
    # The web UI's sign-in (public web configuration of the Firebase app, not a secret).
    PROMPTOPT_FIREBASE_WEB_CONFIG = jsonencode(local.firebase_web_config)
    # The chunk handler writes terminal records on what the queue makes the last attempt.
    PROMPTOPT_BATCH_MAX_ATTEMPTS = tostring(coalesce(try(var.queues.inference.max_attempts, null), 10))
    LOG_EXECUTION_ID             = "true"
    PYTHONUNBUFFERED             = "1"
  }

  # Cloud Tasks targets by manifest name -> run.app URL (service_config[0].uri). Cloud Run counts
  # Cloud Tasks requests as internal only when they are sent to the run.app URL, so tasks target
  # it (and use it as the OIDC audience), never the cloudfunctions.net URL.
  task_function_urls = { for k, m in module.task_function : k => m.uri }
}

# Derived names, topics/queues/schedules/secrets and sanity checks (provider-free).
module "manifest" {
  source = "./modules/manifest"

  functions        = local.bundled_manifests
  manifest_folders = local.manifest_folders
  environment      = var.environment
  base_queues      = var.queues
  base_secrets     = var.secrets
}

# APIs and the Google service agents the platform grants roles to (first step of a first deploy).
module "services" {
  source = "./modules/services"

  project_id = var.project_id
}

module "identities" {
  source = "./modules/identities"

  project_id            = var.project_id
  environment           = var.environment
  pubsub_service_agent  = module.services.pubsub_service_agent
  storage_service_agent = module.services.storage_service_agent
  enable_storage_events = module.manifest.has_storage_triggers

  depends_on = [module.services]
}

module "secrets" {
  source = "./modules/secrets"

  project_id  = var.project_id
  environment = var.environment
  secret_ids  = module.manifest.secret_ids
  labels      = local.labels

  depends_on = [module.services]
}

module "data" {
  source = "./modules/data"

  project_id                = var.project_id
  region                    = var.region
  environment               = var.environment
  labels                    = local.labels
  firestore_location        = var.firestore_location
  firestore_pitr            = var.firestore_pitr
  noncurrent_retention_days = var.noncurrent_retention_days
  dashboard_origins         = var.dashboard_origins

  depends_on = [module.services]
}

module "messaging" {
  source = "./modules/messaging"

  project_id           = var.project_id
  region               = var.region
  environment          = var.environment
  labels               = local.labels
  pubsub_service_agent = module.services.pubsub_service_agent
  topics               = module.manifest.topics
  notification_topics  = var.notification_topics
  queues               = module.manifest.queues
  schedules            = module.manifest.schedules

  depends_on = [module.services]
}

# Cloud Tasks targets, deployed first (their URLs are handed to the functions that enqueue). A task
# function that enqueues (a chunk advancing a run) is not told URLs: it sends the next chunks to
# the URL stored on the job it runs, which its creator was told.
module "task_function" {
  source   = "./modules/function"
  for_each = local.task_functions

  spec         = each.value
  platform_env = local.platform_env

  project_id     = var.project_id
  region         = var.region
  environment    = var.environment
  labels         = local.labels
  runtime        = var.runtime
  source_dir     = "${local.build_dir}/${each.key}"
  zip_dir        = local.zip_dir
  sources_bucket = module.data.sources_bucket
  iam_wait       = var.iam_propagation_wait

  build_service_account           = module.identities.build_id
  gateway_service_account         = module.identities.gateway_email
  tasks_service_account           = module.identities.tasks_email
  tasks_service_account_name      = module.identities.tasks_name
  api_tokens_service_account_name = module.identities.api_tokens_name
  pubsub_push_service_account     = module.identities.pubsub_push_email
  eventarc_service_account        = module.identities.eventarc_email
  pubsub_service_agent            = module.services.pubsub_service_agent
  shared_grants                   = module.identities.grants

  topic_ids             = module.messaging.topic_ids
  dead_letter_topic_ids = module.messaging.dead_letter_topic_ids
  buckets               = module.data.buckets
  secret_ids            = module.secrets.ids
  secret_names          = module.secrets.names
  max_delivery_attempts = var.max_delivery_attempts
}

# Every other function: HTTP endpoints, Pub/Sub, scheduler and storage handlers.
module "function" {
  source   = "./modules/function"
  for_each = local.other_functions

  spec         = each.value
  platform_env = merge(local.platform_env, { PROMPTOPT_FUNCTION_URLS = jsonencode(local.task_function_urls) })

  project_id     = var.project_id
  region         = var.region
  environment    = var.environment
  labels         = local.labels
  runtime        = var.runtime
  source_dir     = "${local.build_dir}/${each.key}"
  zip_dir        = local.zip_dir
  sources_bucket = module.data.sources_bucket
  iam_wait       = var.iam_propagation_wait

  build_service_account           = module.identities.build_id
  gateway_service_account         = module.identities.gateway_email
  tasks_service_account           = module.identities.tasks_email
  tasks_service_account_name      = module.identities.tasks_name
  api_tokens_service_account_name = module.identities.api_tokens_name
  pubsub_push_service_account     = module.identities.pubsub_push_email
  eventarc_service_account        = module.identities.eventarc_email
  pubsub_service_agent            = module.services.pubsub_service_agent
  shared_grants                   = module.identities.grants

  topic_ids             = module.messaging.topic_ids
  dead_letter_topic_ids = module.messaging.dead_letter_topic_ids
  buckets               = module.data.buckets
  secret_ids            = module.secrets.ids
  secret_names          = module.secrets.names
  max_delivery_attempts = var.max_delivery_attempts
}

module "gateway" {
  source = "./modules/gateway"

  project_id              = var.project_id
  region                  = coalesce(var.gateway_region, var.region)
  name                    = "promptopt-${var.environment}"
  labels                  = local.labels
  openapi_template        = "${path.module}/api/openapi.yaml"
  backends                = { for k in module.manifest.http_functions : k => module.function[k].uri }
  gateway_service_account = module.identities.gateway_email
  jwt_issuer              = local.jwt_issuer
  jwt_jwks_uri            = var.jwt_jwks_uri
  jwt_audiences           = local.jwt_audiences
  api_token_issuer        = local.api_token_issuer
  api_token_jwks_uri      = "https://www.googleapis.com/service_accounts/v1/metadata/jwk/${local.api_token_issuer}"
  api_token_audiences     = local.api_token_audience

  depends_on = [module.services]
}

# Log-based metrics, the operations dashboard, alert policies and an uptime check of the public
# liveness route (the one public GET endpoint of the manifests).
module "monitoring" {
  source = "./modules/monitoring"

  project_id                     = var.project_id
  environment                    = var.environment
  labels                         = local.labels
  gateway_host                   = module.gateway.host
  liveness_path                  = one([for m in local.bundled_manifests : m.trigger.path if m.trigger.type == "http" && m.auth.mode == "public" && m.trigger.response_model == "promptopt.http.answer_models.Health"])
  notification_channels          = var.notification_channels
  error_5xx_threshold            = var.error_5xx_threshold
  dead_letter_subscription_regex = "${var.environment}-.*-dead-letter-hold"

  depends_on = [module.services]
}

# The web UI signs users in with Firebase Authentication; its JS SDK needs this web app's
# public configuration, handed to the web UI function as PROMPTOPT_FIREBASE_WEB_CONFIG.
resource "google_firebase_web_app" "web_ui" {
  provider = google-beta
  count    = var.firebase_web_app ? 1 : 0

  project         = var.project_id
  display_name    = "promptopt web UI (${var.environment})"
  deletion_policy = "DELETE"

  depends_on = [module.services]
}

data "google_firebase_web_app_config" "web_ui" {
  provider = google-beta
  count    = var.firebase_web_app ? 1 : 0

  project    = var.project_id
  web_app_id = google_firebase_web_app.web_ui[0].app_id
}
