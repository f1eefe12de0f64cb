# Stateful data: the Firestore database with the indexes, TTL policies and index exemptions the
# code needs, and the buckets. Everything here is protected against accidental destruction.

locals {
  firestore_location = coalesce(var.firestore_location, var.region)
  bucket_prefix      = "${var.project_id}-${var.environment}"
  # Each environment has its own named database (ids are 4-63 characters), so two environments in
  # one project neither share data nor collide on indexes, TTL policies or exemptions, which all
  # belong to their database. The functions are told the id in PROMPTOPT_FIRESTORE_DATABASE.
  firestore_database = "promptopt-${var.environment}"

  # The sorted listings' indexes (var.firestore_sorted_lists): for each collection, order and
  # direction, one on (sort field, id) and one per filter on (filter, sort field, id).
  sorted_list_orders = flatten([
    for collection, list in var.firestore_sorted_lists : [
      for key, field in { created = "created_at", updated = "updated_at", name = list.name_field } : [
        for direction in ["ASCENDING", "DESCENDING"] : {
          collection = collection
          list       = list
          key        = key
          field      = field
          direction  = direction
        }
      ] if contains(list.orders, key)
    ]
  ])
  sorted_list_indexes = merge(
    {
      for o in local.sorted_list_orders : "${o.collection}_sorted_${o.key}_${lower(o.direction)}" => {
        collection  = o.collection
        query_scope = "COLLECTION"
        fields = [
          { field_path = o.field, order = o.direction, array_config = null },
          { field_path = o.list.id_field, order = o.direction, array_config = null },
        ]
      }
    },
    merge([
      for o in local.sorted_list_orders : {
        for f in o.list.filters :
        "${o.collection}_${replace(f.field_path, ".", "_")}_sorted_${o.key}_${lower(o.direction)}" => {
          collection  = o.collection
          query_scope = "COLLECTION"
          fields = [
            {
              field_path   = f.field_path
              order        = f.array_config == null ? "ASCENDING" : null
              array_config = f.array_config
            },
            { field_path = o.field, order = o.direction, array_config = null },
            { field_path = o.list.id_field, order = o.direction, array_config = null },
          ]
        } if f.field_path != o.field
      }
    ]...),
  )
}

resource "google_firestore_database" "this" {
  project                           = var.project_id
  name                              = local.firestore_database
  location_id                       = local.firestore_location
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "PESSIMISTIC"
  app_engine_integration_mode       = "DISABLED"
  point_in_time_recovery_enablement = var.firestore_pitr ? "POINT_IN_TIME_RECOVERY_ENABLED" : "POINT_IN_TIME_RECOVERY_DISABLED"
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"
  # Removing it from Terraform must never delete the data.
  deletion_policy = "ABANDON"

  lifecycle {
    prevent_destroy = true
  }
}

# Composite indexes for the queries the store issues (see shared/promptopt/prompts/service.py).
resource "google_firestore_index" "this" {
  for_each = merge(var.firestore_indexes, local.sorted_list_indexes)

  project     = var.project_id
  database    = google_firestore_database.this.name
  collection  = each.value.collection
  query_scope = each.value.query_scope

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path   = fields.value.field_path
      order        = fields.value.order
      array_config = fields.value.array_config
    }
  }
}

# TTL policies: Firestore deletes a document some time after the timestamp in `field` passes.
# The timestamp is also exempted from indexing: it is never queried and is monotonically
# increasing, which would cap the collection's write rate.
resource "google_firestore_field" "ttl" {
  for_each = { for t in var.firestore_ttl_fields : "${t.collection}.${t.field}" => t }

  project    = var.project_id
  database   = google_firestore_database.this.name
  collection = each.value.collection
  field      = each.value.field

  ttl_config {}
  index_config {}
}

# Single-field index exemptions: monotonically increasing fields on high-write collections
# (results) would cap writes at ~500/s; an empty index_config removes their indexes.
resource "google_firestore_field" "exempt" {
  for_each = { for e in var.firestore_index_exemptions : "${e.collection}.${e.field}" => e }

  project    = var.project_id
  database   = google_firestore_database.this.name
  collection = each.value.collection
  field      = each.value.field

  index_config {}
}

# Collection-group single-field indexes (automatic single-field indexes are per collection only).
resource "google_firestore_field" "collection_group" {
  for_each = { for f in var.firestore_collection_group_fields : "${f.collection}.${f.field}" => f }

  project    = var.project_id
  database   = google_firestore_database.this.name
  collection = each.value.collection
  field      = each.value.field

  index_config {
    indexes {
      order       = "ASCENDING"
      query_scope = "COLLECTION_GROUP"
    }
    indexes {
      order       = "ASCENDING"
      query_scope = "COLLECTION"
    }
  }
}

# The buckets where data lives, alike but for their purpose:
#   datasets  - dataset files users upload or drop in (object-finalized events start ingestion)
#   artifacts - large outputs (full result sets, exports) that do not fit in Firestore documents
resource "google_storage_bucket" "data" {
  for_each = toset(["datasets", "artifacts"])

  #checkov:skip=CKV_GCP_62:Access is recorded by Cloud Audit Logs (Data Access); legacy usage-log buckets add cost and a second copy of object names.
  project                     = var.project_id
  name                        = "${local.bucket_prefix}-${each.key}"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = var.labels

  versioning {
    enabled = true
  }

  # The web UI uploads dataset files from the browser to signed URLs: a cross-origin PUT that
  # Cloud Storage allows only for the origins listed here (the web UI's, i.e. the gateway's).
  dynamic "cors" {
    for_each = each.key == "datasets" && length(var.dashboard_origins) > 0 ? [1] : []
    content {
      origin          = var.dashboard_origins
      method          = ["PUT"]
      response_header = ["Content-Type", "x-goog-content-length-range", "x-goog-if-generation-match"]
      max_age_seconds = 3600
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_retention_days
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 7
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  lifecycle {
    prevent_destroy = true
  }
}

# Function source zips, named by content hash. Old objects are harmless (each build copies its
# source); they become noncurrent only if re-uploaded and are then cleaned up.
resource "google_storage_bucket" "sources" {
  #checkov:skip=CKV_GCP_62:Holds only build inputs that are reproducible from git; Cloud Audit Logs cover access.
  project                     = var.project_id
  name                        = "${local.bucket_prefix}-function-sources"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = var.labels

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 7
    }
    action {
      type = "Delete"
    }
  }
}
