# Alert policies: failed submissions, dead-lettered messages, unhealthy adapters. They notify the channels in
# var.alert_notification_channels (none: incidents still open in the console).

locals {
  monitoring_service_agent = "service-${data.google_project.this.number}@gcp-sa-monitoring-notification.iam.gserviceaccount.com"
}

# Submissions that ended rejected: functions/tasks.py logs "task done: order <status>" for every submit task,
# so a rejected order (the venue refused, or it stayed unreachable after MAX_RETRIES) is countable from logs.
resource "google_logging_metric" "submit_rejected" {
  name   = "${var.name}-submit-rejected"
  filter = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${google_cloudfunctions2_function.service["submit"].name}\" AND jsonPayload.message=\"task done: order rejected\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
  }
}

resource "google_monitoring_alert_policy" "failed_submissions" {
  display_name          = "${var.name}: failed submissions"
  combiner              = "OR"
  notification_channels = var.alert_notification_channels

  documentation {
    content   = "The submit function crashed (5xx: Cloud Tasks retries it) or an order was rejected at submission. Look at the submit function's logs (order_id is on every line) and GET /api/v1/orders/ORDER_ID."
    mime_type = "text/markdown"
  }

  conditions {
    display_name = "submit answered 5xx"
    condition_threshold {
      filter          = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${google_cloudfunctions2_function.service["submit"].name}\" AND metric.type=\"run.googleapis.com/request_count\" AND metric.labels.response_code_class=\"5xx\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_SUM"
      }
    }
  }

  conditions {
    display_name = "an order was rejected at submission"
    condition_threshold {
      filter          = "resource.type=\"cloud_run_revision\" AND metric.type=\"logging.googleapis.com/user/${google_logging_metric.submit_rejected.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_SUM"
      }
    }
  }
}

# Messages in a dead-letter topic's subscription: a function failed a message max_delivery_attempts times.
resource "google_monitoring_alert_policy" "dead_lettered" {
  display_name          = "${var.name}: dead-lettered messages"
  combiner              = "OR"
  notification_channels = var.alert_notification_channels

  documentation {
    content   = "Messages failed delivery to a function pubsub_max_delivery_attempts times and wait in a <topic>-dead-letter-sub subscription. Pull them (gcloud pubsub subscriptions pull), fix the cause, republish."
    mime_type = "text/markdown"
  }

  dynamic "conditions" {
    for_each = google_pubsub_subscription.dead_letter
    content {
      display_name = "messages waiting in ${conditions.value.name}"
      condition_threshold {
        filter          = "resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"${conditions.value.name}\" AND metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\""
        comparison      = "COMPARISON_GT"
        threshold_value = 0
        duration        = "0s"
        aggregations {
          alignment_period   = "300s"
          per_series_aligner = "ALIGN_MAX"
        }
      }
    }
  }
}

# Each adapter's GET /health (503 when its venue is unreachable), probed by an uptime check with an identity
# token of the Monitoring service agent (which gets run.invoker on the adapter below).
resource "google_monitoring_uptime_check_config" "adapter" {
  for_each     = var.venues
  display_name = "${var.name} adapter ${each.key} health"
  timeout      = "10s"
  period       = "300s"

  http_check {
    path           = "/health"
    port           = 443
    use_ssl        = true
    validate_ssl   = true
    request_method = "GET"
    accepted_response_status_codes {
      status_class = "STATUS_CLASS_2XX"
    }
    service_agent_authentication {
      type = "OIDC_TOKEN"
    }
  }

  monitored_resource {
    type = "cloud_run_revision"
    labels = {
      project_id   = var.project_id
      location     = var.region
      service_name = google_cloudfunctions2_function.adapter[each.key].name
    }
  }
}

# Granted after the uptime check exists: the Monitoring service agent may only be created with the first check
# that uses it (until the grant lands, the check fails; the alert waits 10 minutes).
resource "google_cloud_run_service_iam_member" "adapter_health_checker" {
  for_each = var.venues
  location = var.region
  service  = google_cloudfunctions2_function.adapter[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${local.monitoring_service_agent}"

  depends_on = [google_monitoring_uptime_check_config.adapter]
}

resource "google_monitoring_alert_policy" "unhealthy_adapters" {
  display_name          = "${var.name}: unhealthy adapters"
  combiner              = "OR"
  notification_channels = var.alert_notification_channels

  documentation {
    content   = "An adapter's GET /health failed from more than one uptime checker region for 10 minutes: its venue is unreachable or the adapter is down. GET /api/v1/adapters shows each adapter's errors and latency."
    mime_type = "text/markdown"
  }

  dynamic "conditions" {
    for_each = google_monitoring_uptime_check_config.adapter
    content {
      display_name = "adapter ${conditions.key} failing its health check"
      condition_threshold {
        filter          = "metric.type=\"monitoring.googleapis.com/uptime_check/check_passed\" AND metric.labels.check_id=\"${conditions.value.uptime_check_id}\" AND resource.type=\"cloud_run_revision\""
        comparison      = "COMPARISON_GT"
        threshold_value = 1
        duration        = "600s"
        aggregations {
          alignment_period     = "1200s"
          per_series_aligner   = "ALIGN_NEXT_OLDER"
          cross_series_reducer = "REDUCE_COUNT_FALSE"
          group_by_fields      = ["resource.label.*"]
        }
      }
    }
  }
}
