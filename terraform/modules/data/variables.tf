variable "project_id" {
  description = "Project that holds the data."
  type        = string
}

variable "region" {
  description = "Region of the buckets (and of Firestore unless firestore_location is set)."
  type        = string
}

variable "environment" {
  description = "Environment name; part of every bucket name."
  type        = string
}

variable "labels" {
  description = "Labels for every bucket."
  type        = map(string)
  default     = {}
}

variable "firestore_location" {
  description = "Firestore location (e.g. nam5, eur3, us-central1); null means the region."
  type        = string
  default     = null
}

variable "firestore_pitr" {
  description = "Enable Firestore point-in-time recovery (7 days of versions, billed as storage)."
  type        = bool
  default     = true
}

variable "noncurrent_retention_days" {
  description = "Days a replaced or deleted object version is kept in the datasets and artifacts buckets."
  type        = number
  default     = 30
}

variable "firestore_indexes" {
  description = "Composite indexes: key => collection (group id), query_scope and ordered fields."
  type = map(object({
    collection  = string
    query_scope = optional(string, "COLLECTION")
    fields = list(object({
      field_path   = string
      order        = optional(string)
      array_config = optional(string)
    }))
  }))
  default = {
    # Listings of prompts, datasets, experiments and batch jobs: see firestore_sorted_lists.
    # A prompt's versions by source (user or optimizer), newest first.
    versions_by_source = {
      collection = "versions"
      fields = [
        { field_path = "provenance.source", order = "ASCENDING" },
        { field_path = "version", order = "DESCENDING" },
      ]
    }
    # An experiment's runs, newest first; regression runs compare with the latest finished one.
    runs_newest = {
      collection = "runs"
      fields = [
        { field_path = "created_at", order = "DESCENDING" },
        { field_path = "run_id", order = "DESCENDING" },
      ]
    }
    runs_by_status = {
      collection = "runs"
      fields = [
        { field_path = "status", order = "ASCENDING" },
        { field_path = "created_at", order = "DESCENDING" },
      ]
    }
    # Across tenants: the schedule tick's sweep of idle runs, and a tenant's active-run count.
    runs_idle = {
      collection  = "runs"
      query_scope = "COLLECTION_GROUP"
      fields = [
        { field_path = "status", order = "ASCENDING" },
        { field_path = "updated_at", order = "ASCENDING" },
      ]
    }
    runs_active_per_tenant = {
      collection  = "runs"
      query_scope = "COLLECTION_GROUP"
      fields = [
        { field_path = "tenant", order = "ASCENDING" },
        { field_path = "status", order = "ASCENDING" },
      ]
    }
    # A tenant's runs over a range of days, across its experiments (GET /usage: optimizer calls).
    runs_per_tenant_created = {
      collection  = "runs"
      query_scope = "COLLECTION_GROUP"
      fields = [
        { field_path = "tenant", order = "ASCENDING" },
        { field_path = "created_at", order = "ASCENDING" },
      ]
    }
    # The batch sweeper: budget-stopped jobs whose evaluation is still pending, across tenants.
    batch_jobs_unscored = {
      collection  = "batch_jobs"
      query_scope = "COLLECTION_GROUP"
      fields = [
        { field_path = "status", order = "ASCENDING" },
        { field_path = "evaluation.status", order = "ASCENDING" },
      ]
    }
    # The audit log, newest first, whole or by one of action / actor / resource id (with an
    # optional time range on `at`); see shared/promptopt/access/audit.py list_entries.
    audit_by_time = {
      collection = "audit"
      fields = [
        { field_path = "at", order = "DESCENDING" },
        { field_path = "entry_id", order = "DESCENDING" },
      ]
    }
    audit_by_action = {
      collection = "audit"
      fields = [
        { field_path = "action", order = "ASCENDING" },
        { field_path = "at", order = "DESCENDING" },
        { field_path = "entry_id", order = "DESCENDING" },
      ]
    }
    audit_by_actor = {
      collection = "audit"
      fields = [
        { field_path = "actor", order = "ASCENDING" },
        { field_path = "at", order = "DESCENDING" },
        { field_path = "entry_id", order = "DESCENDING" },
      ]
    }
    audit_by_resource = {
      collection = "audit"
      fields = [
        { field_path = "resource_id", order = "ASCENDING" },
        { field_path = "at", order = "DESCENDING" },
        { field_path = "entry_id", order = "DESCENDING" },
      ]
    }
    # Experiments by name (case-folded) and the latest run's status at once, newest first (the
    # sorted orders, alone or with one filter, are in firestore_sorted_lists).
    experiments_by_name_and_status = {
      collection = "experiments"
      fields = [
        { field_path = "name_lower", order = "ASCENDING" },
        { field_path = "last_run_status", order = "ASCENDING" },
        { field_path = "created_at", order = "DESCENDING" },
        { field_path = "experiment_id", order = "DESCENDING" },
      ]
    }
  }
}

variable "firestore_sorted_lists" {
  description = <<-EOT
    Listings sortable by created, updated or name in either direction (?sort=, see
    shared/promptopt/store/sorting.py), each order ending on the id field. Per collection: the id
    field, the name field and the equality filters a listing combines with an order. One index is
    derived per (order, direction) and per (filter, order, direction); a query with several
    filters is served by merging them.
  EOT
  type = map(object({
    id_field   = string
    name_field = optional(string, "name")
    orders     = optional(list(string), ["created", "updated", "name"])
    filters = list(object({
      field_path   = string
      array_config = optional(string)
    }))
  }))
  default = {
    # GET /prompts: archived is filtered unless include_archived; name and label are optional.
    prompts = {
      id_field = "prompt_id"
      filters = [
        { field_path = "archived" },
        { field_path = "name" },
        { field_path = "label_names", array_config = "CONTAINS" },
      ]
    }
    datasets = {
      id_field = "dataset_id"
      filters  = [{ field_path = "name" }]
    }
    experiments = {
      id_field   = "experiment_id"
      name_field = "name_lower"
      filters    = [{ field_path = "name_lower" }, { field_path = "last_run_status" }]
    }
    # Batch jobs have no name.
    batch_jobs = {
      id_field = "job_id"
      orders   = ["created", "updated"]
      filters = [
        { field_path = "status" },
        { field_path = "kind" },
        { field_path = "prompt.prompt_id" },
      ]
    }
  }
}

variable "firestore_ttl_fields" {
  description = "TTL policies: documents of the collection group are deleted after the field's time."
  type = list(object({
    collection = string
    field      = string
  }))
  default = [
    { collection = "idempotency", field = "expires_at" },
    { collection = "cache", field = "expires_at" },
    # The audit log (retention: var.audit_retention_days, stamped by the functions) and the
    # rate limiters' per-request events (kept an hour past their window).
    { collection = "audit", field = "expires_at" },
    { collection = "rate_events", field = "expires_at" },
  ]
}

variable "firestore_index_exemptions" {
  description = "Fields whose automatic single-field indexes are removed: write-heavy collections, and large texts no query filters on."
  type = list(object({
    collection = string
    field      = string
  }))
  default = [
    { collection = "results", field = "created_at" },
    # The head's copy of its latest version and the versions' prompt texts are read by id only.
    { collection = "prompts", field = "latest" },
    { collection = "versions", field = "system_prompt" },
    { collection = "versions", field = "output_prompt" },
    { collection = "versions", field = "metadata" },
    { collection = "idempotency", field = "body" },
    # Dataset versions (the same collection group id as prompt versions): offsets, statistics
    # and bad rows are read with the document, never queried, and can be large.
    { collection = "versions", field = "offsets" },
    { collection = "versions", field = "stats" },
    { collection = "versions", field = "bad_rows" },
    # Batch jobs: results, inline inputs, pinned prompts and cached answers are read by id. A
    # chunk of inline rows with many variables would otherwise pass the 40,000 index entries
    # a document may have.
    { collection = "results", field = "output" },
    { collection = "results", field = "inputs" },
    { collection = "results", field = "reference" },
    { collection = "results", field = "error" },
    { collection = "inputs", field = "rows" },
    { collection = "batch_jobs", field = "system_prompt" },
    { collection = "batch_jobs", field = "output_prompt" },
    { collection = "batch_jobs", field = "response_schema" },
    { collection = "batch_jobs", field = "evaluation" },
    { collection = "cache", field = "text" },
    # An experiment's stored estimate (terms, notes) is read with the document, never queried.
    { collection = "experiments", field = "estimate" },
    # A run's pinned settings, search state and per-row scores, its candidates' texts and scores,
    # and a job's per-row scores are read by id: arrays of thousands of scores would otherwise pass
    # the 40,000 index entries a document may have.
    { collection = "runs", field = "config" },
    { collection = "runs", field = "state" },
    { collection = "runs", field = "plan" },
    { collection = "runs", field = "report_scores" },
    { collection = "candidates", field = "system_prompt" },
    { collection = "candidates", field = "output_prompt" },
    { collection = "candidates", field = "critique" },
    { collection = "candidates", field = "accept_scores" },
    { collection = "candidates", field = "shown_rows" },
    { collection = "events", field = "message" },
    { collection = "scores", field = "rows" },
    { collection = "scores", field = "values" },
  ]
}

variable "firestore_collection_group_fields" {
  description = "Single-field indexes at collection-group scope, for queries across tenants (the schedule tick and sweepers)."
  type = list(object({
    collection = string
    field      = string
  }))
  default = [
    { collection = "experiments", field = "next_run_at" },
    { collection = "batch_jobs", field = "status" },
    { collection = "versions", field = "status" },
  ]
}

variable "dashboard_origins" {
  description = "Origins (https://host) of the web UI, allowed to PUT dataset files to signed URLs."
  type        = list(string)
  default     = []
}
