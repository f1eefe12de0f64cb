# dev environment. Replace the placeholders before the first deploy (scripts/deploy refuses to run
# while project_id is still "your-dev-project"). No secret values belong here: secrets live in
# Secret Manager and are added with `gcloud secrets versions add`.

# Project id of the dev environment (billing enabled).
project_id = "your-dev-project"

# Region for functions, queues, buckets and the gateway (API Gateway must be offered there).
region = "us-central1"

# Firestore location; cannot be changed once the database exists. null = region.
firestore_location = "us-central1"

# Point-in-time recovery costs storage; dev does without it.
firestore_pitr = false

log_level = "DEBUG"

labels = {
  owner = "your-team"
}
