# Operations: log-based metrics from the functions' structured logs, a dashboard, alert policies
# and an uptime check. Every metric reads a log line the code writes on purpose (the message and
# fields named in each filter); tests/infra checks that the code still writes each of them.

locals {
  prefix = "promptopt-${var.environment}"
  # The functions' own stdout logs (Cloud Run revisions), not the platform's request logs.
  ours = "resource.type=\"cloud_run_revision\" AND log_id(\"run.googleapis.com/stdout\") AND resource.labels.service_name=~\"^${var.environment}-\""

  counters = {
    # One line per HTTP answer (promptopt.http.serve): by function and status.
    requests = {
      description = "HTTP answers of the API functions, by function and status."
      filter      = "${local.ours} AND jsonPayload.logger=\"promptopt.http\" AND httpRequest.status>=100"
      labels = {
        function = "EXTRACT(labels.function)"
        status   = "EXTRACT(httpRequest.status)"
      }
    }
    # Batch jobs reaching the end of their rows (promptopt.batch.completion), by state.
    jobs_finished = {
      description = "Batch jobs that finished their rows, by state."
      filter      = "${local.ours} AND jsonPayload.message=~\"^job .* finished its rows\""
      labels      = { status = "EXTRACT(jsonPayload.status)" }
    }
    # Experiment runs reaching a final state (promptopt.experiments.engine), by state.
    runs_finished = {
      description = "Experiment runs that finished, by state."
      filter      = "${local.ours} AND jsonPayload.message=~\"^run .* finished: \""
      labels      = { status = "EXTRACT(jsonPayload.status)" }
    }
    # A run or job the sweeper had to re-drive or fail (promptopt.experiments.tick, batch.sweeper).
    stuck = {
      description = "Runs and jobs found without progress by the sweepers."
      filter      = "${local.ours} AND (jsonPayload.message=~\"^swept run \" OR jsonPayload.message=~\"made no progress\")"
      labels      = {}
    }
    # A tenant at 80% of its monthly cap (promptopt.spend.caps).
    spend_near_cap = {
      description = "Checks that found a tenant's spend at 80% or more of its monthly cap."
      filter      = "${local.ours} AND jsonPayload.message=\"spend near cap\""
      labels      = { tenant = "EXTRACT(jsonPayload.spend_cap.tenant)" }
    }
  }

  distributions = {
    # Latency the functions measured (httpRequest.latency, "0.123456s").
    latency = {
      description = "Handler latency of the API functions, by function (seconds)."
      filter      = "${local.ours} AND jsonPayload.logger=\"promptopt.http\" AND httpRequest.status>=100"
      value       = "REGEXP_EXTRACT(httpRequest.latency, \"([0-9.]+)s\")"
      unit        = "s"
      labels      = { function = "EXTRACT(labels.function)" }
      growth      = 2
      scale       = 0.005
    }
    # Money and calls each piece of paid work recorded (promptopt.spend.ledger): sums are spend.
    spend = {
      description = "USD spent on model calls, per recorded piece of work."
      filter      = "${local.ours} AND jsonPayload.message=\"model spend\""
      value       = "EXTRACT(jsonPayload.spend.cost_usd)"
      unit        = "USD"
      labels      = { tenant = "EXTRACT(jsonPayload.spend.tenant)" }
      growth      = 4
      scale       = 0.0001
    }
    model_calls = {
      description = "Model calls, per recorded piece of work (a chunk, an optimizer step, one completion)."
      filter      = "${local.ours} AND jsonPayload.message=\"model spend\""
      value       = "EXTRACT(jsonPayload.spend.calls)"
      unit        = "1"
      labels      = { tenant = "EXTRACT(jsonPayload.spend.tenant)" }
      growth      = 2
      scale       = 1
    }
  }
}

resource "google_logging_metric" "this" {
  for_each = merge(local.counters, local.distributions)

  project     = var.project_id
  name        = "${local.prefix}-${replace(each.key, "_", "-")}"
  description = each.value.description
  filter      = each.value.filter

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = contains(keys(local.distributions), each.key) ? "DISTRIBUTION" : "INT64"
    unit        = try(each.value.unit, "1")

    dynamic "labels" {
      for_each = each.value.labels
      content {
        key        = labels.key
        value_type = "STRING"
      }
    }
  }

  label_extractors = each.value.labels
  value_extractor  = try(each.value.value, null)

  dynamic "bucket_options" {
    for_each = contains(keys(local.distributions), each.key) ? [each.value] : []
    content {
      exponential_buckets {
        num_finite_buckets = 20
        growth_factor      = bucket_options.value.growth
        scale              = bucket_options.value.scale
      }
    }
  }
}

locals {
  metric = { for k, m in google_logging_metric.this : k => "logging.googleapis.com/user/${m.name}" }

  # Alert conditions: a threshold on one metric over a window. Each notifies var.notification_channels.
  alerts = {
    errors_5xx = {
      name     = "API 5xx answers"
      filter   = "metric.type=\"${local.metric.requests}\" AND metric.labels.status=monitoring.regex.full_match(\"5[0-9][0-9]\")"
      window   = "300s"
      aligner  = "ALIGN_SUM"
      reducer  = "REDUCE_SUM"
      above    = var.error_5xx_threshold
      resource = "cloud_run_revision"
      doc      = "The functions answered more than ${var.error_5xx_threshold} 5xx in 5 minutes. Check the dashboard's errors per function, then that function's logs (severity>=ERROR)."
    }
    dead_letters = {
      name     = "Dead-letter topics not empty"
      filter   = "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=monitoring.regex.full_match(\"${var.dead_letter_subscription_regex}\")"
      window   = "300s"
      aligner  = "ALIGN_MAX"
      reducer  = "REDUCE_MAX"
      above    = 0
      resource = "pubsub_subscription"
      doc      = "A message exhausted its deliveries and sits in a dead-letter hold subscription. Read it (gcloud pubsub subscriptions pull), fix the cause, republish to the original topic."
    }
    runs_stuck = {
      name     = "Runs or jobs stuck"
      filter   = "metric.type=\"${local.metric.stuck}\""
      window   = "1800s"
      aligner  = "ALIGN_SUM"
      reducer  = "REDUCE_SUM"
      above    = 0
      resource = "cloud_run_revision"
      doc      = "The sweepers found runs or jobs without progress and re-drove or failed them. Look for the 'swept run' and 'made no progress' log lines and the run's events."
    }
    spend_near_cap = {
      name     = "Spend near a tenant's cap"
      filter   = "metric.type=\"${local.metric.spend_near_cap}\""
      window   = "3600s"
      aligner  = "ALIGN_SUM"
      reducer  = "REDUCE_SUM"
      above    = 0
      resource = "cloud_run_revision"
      doc      = "A tenant's month is at 80% or more of its spending cap (GET /api/v1/spending-cap). Past it, new work is refused with 402 and work in flight stops."
    }
    uptime = {
      name     = "API liveness check failing"
      filter   = "metric.type=\"monitoring.googleapis.com/uptime_check/check_passed\" AND resource.type=\"uptime_url\" AND metric.labels.check_id=\"${google_monitoring_uptime_check_config.liveness.uptime_check_id}\""
      window   = "300s"
      aligner  = "ALIGN_FRACTION_TRUE"
      reducer  = "REDUCE_MEAN"
      below    = 0.5
      resource = "uptime_url"
      doc      = "The public liveness route (${var.liveness_path}) fails through the gateway from most checker regions."
    }
  }
}

resource "google_monitoring_alert_policy" "this" {
  for_each = local.alerts

  project               = var.project_id
  display_name          = "${local.prefix}: ${each.value.name}"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = var.labels
  severity              = each.key == "spend_near_cap" ? "WARNING" : "ERROR"

  conditions {
    display_name = each.value.name

    condition_threshold {
      filter          = each.value.filter
      comparison      = try(each.value.below, null) == null ? "COMPARISON_GT" : "COMPARISON_LT"
      threshold_value = try(each.value.below, null) == null ? each.value.above : each.value.below
      duration        = "0s"

      aggregations {
        alignment_period     = each.value.window
        per_series_aligner   = each.value.aligner
        cross_series_reducer = each.value.reducer
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    content   = each.value.doc
    mime_type = "text/markdown"
  }

  alert_strategy {
    auto_close = "86400s"
  }
}

# The public liveness route through the gateway, from several regions, every 5 minutes.
resource "google_monitoring_uptime_check_config" "liveness" {
  project      = var.project_id
  display_name = "${local.prefix} API liveness"
  timeout      = "10s"
  period       = "300s"

  http_check {
    path         = var.liveness_path
    port         = 443
    use_ssl      = true
    validate_ssl = true
  }

  monitored_resource {
    type = "uptime_url"
    labels = {
      project_id = var.project_id
      host       = var.gateway_host
    }
  }
}

locals {
  # PromQL over the log-based metrics (distributions expose _sum and _count).
  # (logging.googleapis.com/user/<name> is logging_googleapis_com:user_<name, - as _>).
  promql = { for k, m in google_logging_metric.this : k => "logging_googleapis_com:user_${replace(m.name, "-", "_")}" }

  charts = [
    { title = "Requests per function", query = "sum by (function) (rate(${local.promql.requests}[5m]))" },
    { title = "5xx per function", query = "sum by (function) (rate(${local.promql.requests}{status=~\"5..\"}[5m]))" },
    { title = "4xx per function", query = "sum by (function) (rate(${local.promql.requests}{status=~\"4..\"}[5m]))" },
    { title = "Latency p95 per function (s)", query = "histogram_quantile(0.95, sum by (function, le) (rate(${local.promql.latency}_bucket[5m])))" },
    { title = "Jobs finished by state", query = "sum by (status) (increase(${local.promql.jobs_finished}[1h]))" },
    { title = "Runs finished by state", query = "sum by (status) (increase(${local.promql.runs_finished}[1h]))" },
    { title = "Model calls per hour", query = "sum(increase(${local.promql.model_calls}_sum[1h]))" },
    { title = "Spend per hour (USD)", query = "sum by (tenant) (increase(${local.promql.spend}_sum[1h]))" },
    { title = "Rate-limited answers (429)", query = "sum by (function) (rate(${local.promql.requests}{status=\"429\"}[5m]))" },
    { title = "Dead letters waiting", query = "max by (subscription_id) (pubsub_googleapis_com:subscription_num_undelivered_messages{monitored_resource=\"pubsub_subscription\",subscription_id=~\"${var.dead_letter_subscription_regex}\"})" },
  ]
}

resource "google_monitoring_dashboard" "this" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "${local.prefix} operations"
    gridLayout = {
      columns = 2
      widgets = [
        for chart in local.charts : {
          title = chart.title
          xyChart = {
            dataSets = [{
              timeSeriesQuery = { prometheusQuery = chart.query }
              plotType        = "LINE"
            }]
          }
        }
      ]
    }
  })
}
