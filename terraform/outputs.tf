# What a deployment hands back: the API URL, the topic and subscription names, the function URLs, and the
# secrets an operator must fill before the first full apply (scripts/deploy.sh reads operator_secrets).

output "api_url" {
  description = "Base URL of the REST API (every route is under it); calls need an identity token and an X-API-Key."
  value       = "${google_cloudfunctions2_function.api.service_config[0].uri}/api/v1"
}

output "topics" {
  description = "Pub/Sub topic ids, by Settings attribute (publish signals to signals_topic; consume order_events_topic)."
  value       = { for k, t in google_pubsub_topic.topic : k => t.name }
}

output "dead_letter_subscriptions" {
  description = "Pull subscriptions holding each topic's dead-lettered messages."
  value       = { for k, s in google_pubsub_subscription.dead_letter : k => s.name }
}

output "queues" {
  description = "Cloud Tasks queue ids, by Settings attribute (submit_queue-<venue>: each venue's submit queue)."
  value = merge({ for k, q in google_cloud_tasks_queue.queue : k => q.name },
  { for venue, q in google_cloud_tasks_queue.submit : "submit_queue-${venue}" => q.name })
}

output "function_urls" {
  description = "URL of every function (adapters as adapter-<venue>)."
  value = merge(
    { for fn, f in google_cloudfunctions2_function.service : fn => f.service_config[0].uri },
    { api = google_cloudfunctions2_function.api.service_config[0].uri },
    { for venue, f in google_cloudfunctions2_function.adapter : "adapter-${venue}" => f.service_config[0].uri },
  )
}

output "operator_secrets" {
  description = "Secret Manager secrets whose values Terraform never sees: add a version to each before the first full apply (API keys; each venue's credentials)."
  value       = concat([google_secret_manager_secret.api_keys.secret_id], [for s in google_secret_manager_secret.venue_credential : s.secret_id])
}

output "redis_host" {
  description = "Private address of Memorystore (TLS on the port shown)."
  value       = "${google_redis_instance.this.host}:${google_redis_instance.this.port}"
}

output "bigquery_tables" {
  description = "BigQuery tables (project.dataset.table) the tca-records and order-events topics stream into, and the tca_aggregate view."
  value = {
    tca_records   = "${google_bigquery_table.tca_records.project}.${google_bigquery_table.tca_records.dataset_id}.${google_bigquery_table.tca_records.table_id}"
    order_events  = "${google_bigquery_table.order_events.project}.${google_bigquery_table.order_events.dataset_id}.${google_bigquery_table.order_events.table_id}"
    tca_aggregate = "${google_bigquery_table.tca_aggregate.project}.${google_bigquery_table.tca_aggregate.dataset_id}.${google_bigquery_table.tca_aggregate.table_id}"
  }
}

output "venue_egress_ip" {
  description = "The static address every adapter reaches its venue from (Cloud NAT): allow-list it for each venue's API key."
  value       = google_compute_address.venue_egress.address
}
