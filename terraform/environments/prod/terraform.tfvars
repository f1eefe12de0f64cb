# prod environment. Replace the placeholders before the first deploy (scripts/deploy refuses to run
# while project_id is still "your-prod-project"). No secret values belong here: secrets live in
# Secret Manager and are added with `gcloud secrets versions add`.

# Project id of the prod environment (billing enabled).
project_id = "your-prod-project"

# Region for functions, queues, buckets and the gateway (API Gateway must be offered there).
region = "us-central1"

# Firestore location; cannot be changed once the database exists. nam5 = multi-region US.
firestore_location = "nam5"

firestore_pitr = true

log_level = "INFO"

labels = {
  owner = "your-team"
}
