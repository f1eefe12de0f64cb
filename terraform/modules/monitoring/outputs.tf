output "metric_types" {
  description = "Log-based metric types by short name (for charts and alerts elsewhere)."
  value       = { for k, m in google_logging_metric.this : k => "logging.googleapis.com/user/${m.name}" }
}

output "alert_policies" {
  description = "Alert policy ids by short name."
  value       = { for k, p in google_monitoring_alert_policy.this : k => p.id }
}

output "dashboard_id" {
  description = "The operations dashboard."
  value       = google_monitoring_dashboard.this.id
}

output "uptime_check_id" {
  description = "The uptime check of the liveness route."
  value       = google_monitoring_uptime_check_config.liveness.uptime_check_id
}
