# The prod environment: providers plus one call of the promptopt root module (terraform/).

provider "google" {
  project = var.project_id
  region  = var.region
}

provider "google-beta" {
  project = var.project_id
  region  = var.region
}

module "promptopt" {
  source = "../.."

  project_id  = var.project_id
  region      = var.region
  environment = "prod"
  # The repository root holds functions/ (the manifests) and build/ (bundles from scripts/build).
  repo_root = "${path.root}/${var.repo_root}"

  firestore_location = var.firestore_location
  firestore_pitr     = var.firestore_pitr
  log_level          = var.log_level
  labels             = var.labels
}
