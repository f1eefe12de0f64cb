# promptopt: everything one environment needs. Called by environments/<env>/main.tf.
#
# The function list is never written here: every functions/<name>/function.yaml is read with
# fileset + yamldecode, normalised by modules/manifest and deployed through one for_each'd
# function module. Topics, queues, schedules and secrets that manifests reference are added to
# the platform's own.

locals {
  repo_root = coalesce(var.repo_root, "${path.module}/..")
  zip_dir   = coalesce(var.zip_dir, "${local.repo_root}/build/zips/${var.environment}")

  # The single source of truth: every functions/<name>/function.yaml.
  manifest_files = fileset("${local.repo_root}/functions", "*/function.yaml")
  manifests = {
    for f in local.manifest_files : dirname(f) => yamldecode(file("${local.repo_root}/functions/${f}"))
  }

  functions = module.manifest.functions

  labels = merge(var.labels, { app = "promptopt", environment = var.environment })

  pubsub_service_agent = "service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  jwt_issuer    = coalesce(var.jwt_issuer, "https://securetoken.google.com/${var.project_id}")
  jwt_audiences = coalesce(var.jwt_audiences, var.project_id)

  # What every function is told about its environment (read by promptopt.config as PROMPTOPT_*).
  platform_env = {
    GOOGLE_CLOUD_PROJECT            = var.project_id
    PROMPTOPT_ENVIRONMENT           = var.environment
    PROMPTOPT_REGION                = var.region
    PROMPTOPT_FIRESTORE_DATABASE    = module.data.firestore_database
    PROMPTOPT_DATASETS_BUCKET       = module.data.datasets_bucket
    PROMPTOPT_ARTIFACTS_BUCKET      = module.data.artifacts_bucket
    PROMPTOPT_TOPICS                = jsonencode(module.messaging.topic_ids)
    PROMPTOPT_QUEUES                = jsonencode(module.messaging.queue_ids)
    PROMPTOPT_TASKS_SERVICE_ACCOUNT = module.identities.tasks_email
    PROMPTOPT_FUNCTION_PREFIX       = "${var.environment}-"
    PROMPTOPT_FUNCTIONS_BASE_URL    = "https://${var.region}-${var.project_id}.cloudfunctions.net"
    PROMPTOPT_LOG_LEVEL             = var.log_level
    PROMPTOPT_DEFAULT_MODEL         = var.default_model
    # The chunk handler writes terminal records on what the queue makes the last attempt.
    PROMPTOPT_BATCH_MAX_ATTEMPTS = tostring(try(var.queues.inference.max_attempts, 10))
    LOG_EXECUTION_ID             = "true"
    PYTHONUNBUFFERED             = "1"
  }
}

# Defaults, derived topics/queues/schedules/secrets and sanity checks (provider-free).
module "manifest" {
  source = "./modules/manifest"

  manifests     = local.manifests
  environment   = var.environment
  base_topics   = var.topics
  base_queues   = var.queues
  base_secrets  = var.secrets
  schedule_tick = var.schedule_tick
}

data "google_project" "this" {
  project_id = var.project_id
}

data "google_storage_project_service_account" "this" {
  project = var.project_id
}

module "services" {
  source = "./modules/services"

  project_id = var.project_id
}

module "identities" {
  source = "./modules/identities"

  project_id            = var.project_id
  environment           = var.environment
  pubsub_service_agent  = local.pubsub_service_agent
  storage_service_agent = data.google_storage_project_service_account.this.email_address
  enable_storage_events = module.manifest.has_storage_triggers
  sources_bucket        = module.data.sources_bucket

  depends_on = [module.services]
}

module "secrets" {
  source = "./modules/secrets"

  project_id = var.project_id
  secret_ids = module.manifest.secret_ids
  labels     = local.labels

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

  depends_on = [module.services]
}

module "messaging" {
  source = "./modules/messaging"

  project_id           = var.project_id
  region               = var.region
  environment          = var.environment
  labels               = local.labels
  pubsub_service_agent = local.pubsub_service_agent
  topics               = module.manifest.topics
  queues               = module.manifest.queues
  schedules            = module.manifest.schedules

  depends_on = [module.services]
}

module "function" {
  source   = "./modules/function"
  for_each = local.functions

  spec        = each.value
  project_id  = var.project_id
  region      = var.region
  environment = var.environment
  labels      = local.labels
  runtime     = var.runtime

  source_dir     = "${local.repo_root}/build/${each.key}"
  zip_dir        = local.zip_dir
  sources_bucket = module.data.sources_bucket
  platform_env   = local.platform_env

  build_service_account       = module.identities.build_id
  gateway_service_account     = module.identities.gateway_email
  tasks_service_account       = module.identities.tasks_email
  tasks_service_account_name  = module.identities.tasks_name
  pubsub_push_service_account = module.identities.pubsub_push_email
  eventarc_service_account    = module.identities.eventarc_email
  pubsub_service_agent        = local.pubsub_service_agent

  topic_ids             = module.messaging.topic_ids
  dead_letter_topic_ids = module.messaging.dead_letter_topic_ids
  buckets               = module.data.buckets
  secret_ids            = module.secrets.ids
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

  depends_on = [module.services]
}
