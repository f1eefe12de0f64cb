output "firestore_database" {
  description = "Firestore database id."
  value       = google_firestore_database.this.name
}

output "datasets_bucket" {
  description = "Bucket users drop dataset files into."
  value       = google_storage_bucket.data["datasets"].name
}

output "artifacts_bucket" {
  description = "Bucket for large outputs."
  value       = google_storage_bucket.data["artifacts"].name
}

output "sources_bucket" {
  description = "Bucket holding function source zips."
  value       = google_storage_bucket.sources.name
}

output "buckets" {
  description = "Logical bucket name (as manifests name it) -> real bucket name."
  value = {
    datasets  = google_storage_bucket.data["datasets"].name
    artifacts = google_storage_bucket.data["artifacts"].name
  }
}
