# Remote state in a GCS bucket you create once per environment (see terraform/README.md):
#   gcloud storage buckets create gs://BUCKET --project=PROJECT --location=REGION \
#     --uniform-bucket-level-access --public-access-prevention
#   gcloud storage buckets update gs://BUCKET --versioning
# Replace the placeholder below, or keep it and pass the real name at init time:
#   terraform init -backend-config="bucket=BUCKET"   (scripts/deploy does this from TF_STATE_BUCKET)
terraform {
  backend "gcs" {
    bucket = "your-prod-project-tfstate"
    prefix = "promptopt/prod"
  }
}
