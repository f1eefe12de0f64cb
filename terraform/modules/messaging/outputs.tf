output "topic_ids" {
  description = "Logical topic name -> topic id (projects/P/topics/T), notification topics included."
  value = merge(
    { for k, t in google_pubsub_topic.notification : k => t.id },
    { for k, t in google_pubsub_topic.this : k => t.id },
  )
}

output "topic_names" {
  description = "Logical topic name -> topic name."
  value       = { for k, t in google_pubsub_topic.this : k => t.name }
}

output "dead_letter_topic_ids" {
  description = "Logical topic name -> its dead-letter topic id."
  value       = { for k, t in google_pubsub_topic.dead_letter : k => t.id }
}

output "queue_ids" {
  description = "Logical queue name -> queue id (projects/P/locations/L/queues/Q)."
  value       = { for k, q in google_cloud_tasks_queue.this : k => q.id }
}

output "queue_names" {
  description = "Logical queue name -> queue name."
  value       = { for k, q in google_cloud_tasks_queue.this : k => q.name }
}

output "scheduler_jobs" {
  description = "Scheduler job names."
  value       = [for j in google_cloud_scheduler_job.this : j.name]
}
