# Alert policies: failed submissions, Redis unavailable, dead-lettered messages, unhealthy adapters. They notify the channels in
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

# Redis (Memorystore) failures the service works around: shared/infra/redis_client.py logs "redis unavailable"
# (at most once per use every 10 s per instance) where the API's shared rate limit, metrics, adapter statistics
# or an adapter's switch view go without Redis. Counted here so an outage is an incident, never silence.
resource "google_logging_metric" "redis_unavailable" {
  name             = "${var.name}-redis-unavailable"
  description      = "Redis failures the service worked around, by use (rate_limit, metrics, adapter_stats, adapter_switch, venue_budget)."
  filter           = "resource.type=\"cloud_run_revision\" AND jsonPayload.message=\"redis unavailable\""
  label_extractors = { use = "EXTRACT(jsonPayload.redis_use)" }
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key        = "use"
      value_type = "STRING"
    }
  }
}

resource "google_monitoring_alert_policy" "redis_unavailable" {
  display_name          = "${var.name}: redis unavailable"
  combiner              = "OR"
  notification_channels = var.alert_notification_channels

  documentation {
    content   = "Functions could not reach Memorystore (log-based metric ${google_logging_metric.redis_unavailable.name}, \"redis unavailable\" log lines; the use label says what went without it). While it lasts the API's per-key rate limit is not shared between instances, metrics are lost and adapters fall back to their own view. Check the instance (maintenance, memory), the VPC connector and the REDIS_URL / REDIS_CA_FILE secrets."
    mime_type = "text/markdown"
  }

  conditions {
    display_name = "redis unavailable"
    condition_threshold {
      filter          = "resource.type=\"cloud_run_revision\" AND metric.type=\"logging.googleapis.com/user/${google_logging_metric.redis_unavailable.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.use"]
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

# ---- execution quality (issue #11) ---------------------------------------------------------------------------
# Functions are serverless: nothing scrapes GET /api/v1/metrics in the cloud. The same figures are counted from
# the service's structured logs instead (shared/infra/log.py: extra fields land at the top of jsonPayload), with
# log-based metrics on exactly the messages tests/terraform/tfcheck.py lists in TCA_LOG_MESSAGES. Each alert
# policy below is the counterpart of one Prometheus alert of monitoring/prometheus/alerts.yml (named in its
# user_labels.prometheus_alert); docs/monitoring.md maps them.
#
# Condition types. A threshold condition (condition_threshold) where one series per venue against a fixed
# number says it: ack latency p95 (ALIGN_PERCENTILE_95 of the distribution), reject rate (a ratio of two
# counters: filter / denominator_filter), market data unavailable and DMS fired (counts). PromQL
# (condition_prometheus_query_language, which Cloud Monitoring evaluates over its own metrics, log-based ones
# included, distributions as _sum/_count/_bucket) where the alert compares a mean with the venue's own baseline
# or needs sum/count: slippage degraded, fill ratio collapse, adverse markout. MQL could say it too but is
# deprecated for new alert policies.
locals {
  # Log entries of the service's functions (gen2 functions run as Cloud Run services).
  log_resource = "resource.type=\"cloud_run_revision\""
  # shared/infra/metrics.py BPS and RATIO, and SECONDS in milliseconds (the log line carries ack_latency_ms).
  bps_bounds     = [-100, -50, -25, -10, -5, -2, -1, 0, 1, 2, 5, 10, 25, 50, 100]
  ratio_bounds   = [0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1]
  latency_bounds = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000]

  # A log-based metric's PromQL name: logging.googleapis.com/user/NAME -> logging_googleapis_com:user_NAME, with
  # every other special character (the hyphens of NAME) as "_". Log-based metrics may map to several monitored
  # resources: the queries name theirs.
  tca_promql = {
    arrival_cost = "logging_googleapis_com:user_${replace(google_logging_metric.tca_arrival_cost.name, "-", "_")}"
    fill_ratio   = "logging_googleapis_com:user_${replace(google_logging_metric.tca_fill_ratio.name, "-", "_")}"
    markout      = "logging_googleapis_com:user_${replace(google_logging_metric.tca_markout.name, "-", "_")}"
  }
  promql_resource = "monitored_resource=\"cloud_run_revision\""
}

# Arrival cost of each ended top-level order (bps, positive: it cost us). "tca record" is logged again, version + 1,
# when the row's markouts complete: only version 1 is counted, as the service observes its histogram once. Rows
# without an arrival cost (no arrival mid) carry null and are not counted.
resource "google_logging_metric" "tca_arrival_cost" {
  name             = "${var.name}-tca-arrival-cost"
  description      = "Arrival cost (bps) of each ended top-level order, by venue and algorithm (execution_arrival_cost_bps)."
  filter           = "${local.log_resource} AND jsonPayload.message=\"tca record\" AND jsonPayload.tca.version=1 AND NOT jsonPayload.tca.arrival_cost_bps=NULL_VALUE"
  value_extractor  = "EXTRACT(jsonPayload.tca.arrival_cost_bps)"
  label_extractors = { venue = "EXTRACT(jsonPayload.tca.venue)", algorithm = "EXTRACT(jsonPayload.tca.algorithm)" }
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "1"
    labels {
      key        = "venue"
      value_type = "STRING"
    }
    labels {
      key        = "algorithm"
      value_type = "STRING"
    }
  }
  bucket_options {
    explicit_buckets {
      bounds = local.bps_bounds
    }
  }
}

resource "google_logging_metric" "tca_fill_ratio" {
  name             = "${var.name}-tca-fill-ratio"
  description      = "Fill ratio (filled / ordered) of each ended top-level order, by venue and algorithm (execution_fill_ratio)."
  filter           = "${local.log_resource} AND jsonPayload.message=\"tca record\" AND jsonPayload.tca.version=1 AND NOT jsonPayload.tca.fill_ratio=NULL_VALUE"
  value_extractor  = "EXTRACT(jsonPayload.tca.fill_ratio)"
  label_extractors = { venue = "EXTRACT(jsonPayload.tca.venue)", algorithm = "EXTRACT(jsonPayload.tca.algorithm)" }
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "1"
    labels {
      key        = "venue"
      value_type = "STRING"
    }
    labels {
      key        = "algorithm"
      value_type = "STRING"
    }
  }
  bucket_options {
    explicit_buckets {
      bounds = local.ratio_bounds
    }
  }
}

# One line per fill and horizon (1, 10, 60, 300 s) when its mid is read (bps, positive: in our favour).
resource "google_logging_metric" "tca_markout" {
  name             = "${var.name}-tca-markout"
  description      = "Markout (bps) of each fill at each horizon, by venue and horizon in seconds (execution_markout_bps)."
  filter           = "${local.log_resource} AND jsonPayload.message=\"tca markout\""
  value_extractor  = "EXTRACT(jsonPayload.markout.markout_bps)"
  label_extractors = { venue = "EXTRACT(jsonPayload.markout.venue)", horizon = "EXTRACT(jsonPayload.markout.horizon_s)" }
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "1"
    labels {
      key        = "venue"
      value_type = "STRING"
    }
    labels {
      key        = "horizon"
      value_type = "STRING"
    }
  }
  bucket_options {
    explicit_buckets {
      bounds = local.bps_bounds
    }
  }
}

resource "google_logging_metric" "venue_ack_latency" {
  name             = "${var.name}-venue-ack-latency"
  description      = "First venue order sent -> venue acknowledgement, in ms, by venue (execution_venue_ack_latency_seconds)."
  filter           = "${local.log_resource} AND jsonPayload.message=\"venue acknowledged\""
  value_extractor  = "EXTRACT(jsonPayload.ack_latency_ms)"
  label_extractors = { venue = "EXTRACT(jsonPayload.venue)" }
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "ms"
    labels {
      key        = "venue"
      value_type = "STRING"
    }
  }
  bucket_options {
    explicit_buckets {
      bounds = local.latency_bounds
    }
  }
}

resource "google_logging_metric" "order_rejects" {
  name             = "${var.name}-order-rejects"
  description      = "Orders that ended rejected, by venue and reason (execution_rejects_total)."
  filter           = "${local.log_resource} AND jsonPayload.message=\"order rejected\""
  label_extractors = { venue = "EXTRACT(jsonPayload.venue)", reason = "EXTRACT(jsonPayload.reject_reason)" }
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key        = "venue"
      value_type = "STRING"
    }
    labels {
      key        = "reason"
      value_type = "STRING"
    }
  }
}

# The reject rate's denominator: every order a venue acknowledged or that ended rejected (the logs have no line
# per ended order, as execution_orders_total has; acknowledged + rejected is the nearest count of orders tried).
resource "google_logging_metric" "venue_outcomes" {
  name             = "${var.name}-venue-outcomes"
  description      = "Orders acknowledged by their venue or rejected, by venue (the reject rate's denominator)."
  filter           = "${local.log_resource} AND (jsonPayload.message=\"venue acknowledged\" OR jsonPayload.message=\"order rejected\")"
  label_extractors = { venue = "EXTRACT(jsonPayload.venue)" }
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key        = "venue"
      value_type = "STRING"
    }
  }
}

# Market data reads that were stale or failed (the ok reads are not logged: a count, not a share as in Prometheus).
resource "google_logging_metric" "market_data_unavailable" {
  name             = "${var.name}-market-data-unavailable"
  description      = "Market data reads for execution quality that were stale or failed, by venue and outcome (execution_market_data_reads_total{outcome!=\"ok\"})."
  filter           = "${local.log_resource} AND jsonPayload.message=\"market data unavailable\""
  label_extractors = { venue = "EXTRACT(jsonPayload.venue)", outcome = "EXTRACT(jsonPayload.outcome)" }
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key        = "venue"
      value_type = "STRING"
    }
    labels {
      key        = "outcome"
      value_type = "STRING"
    }
  }
}

# The DMS logs its reason in free text with jsonPayload.dms_fired = "global" | "strategy": the field's presence.
resource "google_logging_metric" "dms_fired" {
  name             = "${var.name}-dms-fired"
  description      = "Dead man's switches that fired, by scope (execution_dms_fired_total)."
  filter           = "${local.log_resource} AND jsonPayload.dms_fired:*"
  label_extractors = { scope = "EXTRACT(jsonPayload.dms_fired)" }
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key        = "scope"
      value_type = "STRING"
    }
  }
}

# The execution-quality alert policies: one per Prometheus alert, all of one shape, keyed by the alert's
# snake-case name (user_labels.prometheus_alert). Each has either a threshold condition or a PromQL one.
locals {
  execution_alerts = {
    execution_slippage_degraded = {
      display_name  = "slippage degraded"
      documentation = "The last hour's mean arrival cost on a venue is more than ${var.alert_thresholds.slippage_margin_bps} bps above its own ${var.alert_thresholds.baseline_window} mean, over at least ${var.alert_thresholds.min_orders} ended orders (log-based metric ${google_logging_metric.tca_arrival_cost.name}, from the \"tca record\" log lines). Prometheus: ExecutionSlippageDegraded. Look at BigQuery's tca_aggregate view for the venue (which algorithm, strategy, symbol moved), the venue's spread and ack latency."
      condition     = "arrival cost above its baseline"
      threshold     = null
      promql = {
        duration   = "900s"
        alert_rule = "ExecutionSlippageDegraded"
        query      = <<-EOT
          (
            sum by (venue) (increase(${local.tca_promql.arrival_cost}_sum{${local.promql_resource}}[1h]))
              / sum by (venue) (increase(${local.tca_promql.arrival_cost}_count{${local.promql_resource}}[1h]))
          )
          > (
            sum by (venue) (increase(${local.tca_promql.arrival_cost}_sum{${local.promql_resource}}[${var.alert_thresholds.baseline_window}]))
              / sum by (venue) (increase(${local.tca_promql.arrival_cost}_count{${local.promql_resource}}[${var.alert_thresholds.baseline_window}]))
          ) + ${var.alert_thresholds.slippage_margin_bps}
          and sum by (venue) (increase(${local.tca_promql.arrival_cost}_count{${local.promql_resource}}[1h])) >= ${var.alert_thresholds.min_orders}
        EOT
      }
    }
    execution_reject_rate_high = {
      display_name  = "reject rate high"
      documentation = "More than ${var.alert_thresholds.reject_rate * 100}% of a venue's orders (acknowledged or rejected, 15 minutes) ended rejected (log-based metrics ${google_logging_metric.order_rejects.name} / ${google_logging_metric.venue_outcomes.name}). Prometheus: ExecutionRejectRateHigh. The reason label of ${google_logging_metric.order_rejects.name} says why; check the venue's status, balances and limits, and GET /api/v1/adapters."
      condition     = "rejected share of a venue's orders"
      promql        = null
      threshold = {
        filter             = "${local.log_resource} AND metric.type=\"logging.googleapis.com/user/${google_logging_metric.order_rejects.name}\""
        denominator_filter = "${local.log_resource} AND metric.type=\"logging.googleapis.com/user/${google_logging_metric.venue_outcomes.name}\""
        value              = var.alert_thresholds.reject_rate
        duration           = "600s"
        alignment_period   = "900s"
        aligner            = "ALIGN_SUM"
        reducer            = "REDUCE_SUM"
        group_by           = ["metric.label.venue"]
      }
    }
    execution_venue_ack_latency_high = {
      display_name  = "venue ack latency high"
      documentation = "A venue's 95th percentile ack latency (first venue order sent -> acknowledgement) has been above ${var.alert_thresholds.ack_latency_p95_ms} ms for 10 minutes (log-based metric ${google_logging_metric.venue_ack_latency.name}, from the \"venue acknowledged\" log lines). Prometheus: ExecutionVenueAckLatencyHigh. GET /api/v1/adapters shows the adapter's latency and errors."
      condition     = "ack latency p95 per venue"
      promql        = null
      threshold = {
        filter             = "${local.log_resource} AND metric.type=\"logging.googleapis.com/user/${google_logging_metric.venue_ack_latency.name}\""
        denominator_filter = null
        value              = var.alert_thresholds.ack_latency_p95_ms
        duration           = "600s"
        alignment_period   = "300s"
        aligner            = "ALIGN_PERCENTILE_95"
        reducer            = "REDUCE_MAX"
        group_by           = ["metric.label.venue"]
      }
    }
    execution_fill_ratio_collapse = {
      display_name  = "fill ratio collapse"
      documentation = "The last hour's mean fill ratio on a venue is under ${var.alert_thresholds.fill_ratio_collapse_factor} times its ${var.alert_thresholds.baseline_window} mean, over at least ${var.alert_thresholds.min_orders} ended orders (log-based metric ${google_logging_metric.tca_fill_ratio.name}). Prometheus: ExecutionFillRatioCollapse. Look for limit prices or collars that no longer reach the book, expiring orders and stale market data."
      condition     = "fill ratio under its baseline"
      threshold     = null
      promql = {
        duration   = "1800s"
        alert_rule = "ExecutionFillRatioCollapse"
        query      = <<-EOT
          (
            sum by (venue) (increase(${local.tca_promql.fill_ratio}_sum{${local.promql_resource}}[1h]))
              / sum by (venue) (increase(${local.tca_promql.fill_ratio}_count{${local.promql_resource}}[1h]))
          )
          < ${var.alert_thresholds.fill_ratio_collapse_factor} * (
            sum by (venue) (increase(${local.tca_promql.fill_ratio}_sum{${local.promql_resource}}[${var.alert_thresholds.baseline_window}]))
              / sum by (venue) (increase(${local.tca_promql.fill_ratio}_count{${local.promql_resource}}[${var.alert_thresholds.baseline_window}]))
          )
          and sum by (venue) (increase(${local.tca_promql.fill_ratio}_count{${local.promql_resource}}[1h])) >= ${var.alert_thresholds.min_orders}
        EOT
      }
    }
    execution_market_data_stale = {
      display_name  = "stale market data"
      documentation = "More than ${var.alert_thresholds.market_data_unavailable_per_10m} market data reads on a venue were stale or failed in 10 minutes (log-based metric ${google_logging_metric.market_data_unavailable.name}, \"market data unavailable\" log lines; a count: ok reads are not logged). Prometheus: ExecutionMarketDataStale (a share there). Market orders' collars and TCA benchmarks there use old or no quotes: check the adapter and the venue."
      condition     = "stale or failed market data reads per venue"
      promql        = null
      threshold = {
        filter             = "${local.log_resource} AND metric.type=\"logging.googleapis.com/user/${google_logging_metric.market_data_unavailable.name}\""
        denominator_filter = null
        value              = var.alert_thresholds.market_data_unavailable_per_10m
        duration           = "300s"
        alignment_period   = "600s"
        aligner            = "ALIGN_SUM"
        reducer            = "REDUCE_SUM"
        group_by           = ["metric.label.venue"]
      }
    }
    execution_dead_mans_switch_fired = {
      display_name  = "dead man's switch fired"
      documentation = "A dead man's switch fired (log-based metric ${google_logging_metric.dms_fired.name}, log lines with jsonPayload.dms_fired): heartbeats stopped and the service cancelled a strategy's open orders (strategy) or every strategy's (global). Prometheus: ExecutionDeadMansSwitchFired. Read the dms function's log line for the reason, check the heartbeat sender, then POST /api/v1/strategies/ID/enable."
      condition     = "dead man's switch fired"
      promql        = null
      threshold = {
        filter             = "${local.log_resource} AND metric.type=\"logging.googleapis.com/user/${google_logging_metric.dms_fired.name}\""
        denominator_filter = null
        value              = 0
        duration           = "0s"
        alignment_period   = "300s"
        aligner            = "ALIGN_SUM"
        reducer            = "REDUCE_SUM"
        group_by           = ["metric.label.scope"]
      }
    }
    execution_adverse_markout = {
      display_name  = "adverse markout"
      documentation = "The last hour's mean 60 s markout on a venue is below ${var.alert_thresholds.markout_60s_bps} bps over at least ${var.alert_thresholds.min_orders} fills (log-based metric ${google_logging_metric.tca_markout.name}, \"tca markout\" log lines; positive: in our favour): fills there are adversely selected. Prometheus: ExecutionAdverseMarkout. Look at the markout curve, maker share and participation in tca_aggregate."
      condition     = "60 s markout below the floor"
      threshold     = null
      promql = {
        duration   = "1800s"
        alert_rule = "ExecutionAdverseMarkout"
        query      = <<-EOT
          (
            sum by (venue) (increase(${local.tca_promql.markout}_sum{${local.promql_resource}, horizon="60"}[1h]))
              / sum by (venue) (increase(${local.tca_promql.markout}_count{${local.promql_resource}, horizon="60"}[1h]))
          ) < ${var.alert_thresholds.markout_60s_bps}
          and sum by (venue) (increase(${local.tca_promql.markout}_count{${local.promql_resource}, horizon="60"}[1h])) >= ${var.alert_thresholds.min_orders}
        EOT
      }
    }
  }
}

resource "google_monitoring_alert_policy" "execution" {
  for_each              = local.execution_alerts
  display_name          = "${var.name}: ${each.value.display_name}"
  combiner              = "OR"
  notification_channels = var.alert_notification_channels
  user_labels           = { prometheus_alert = each.key }

  documentation {
    content   = each.value.documentation
    mime_type = "text/markdown"
  }

  conditions {
    display_name = each.value.condition

    dynamic "condition_threshold" {
      for_each = each.value.threshold == null ? [] : [each.value.threshold]
      content {
        filter             = condition_threshold.value.filter
        denominator_filter = condition_threshold.value.denominator_filter
        comparison         = "COMPARISON_GT"
        threshold_value    = condition_threshold.value.value
        duration           = condition_threshold.value.duration
        aggregations {
          alignment_period     = condition_threshold.value.alignment_period
          per_series_aligner   = condition_threshold.value.aligner
          cross_series_reducer = condition_threshold.value.reducer
          group_by_fields      = condition_threshold.value.group_by
        }
        dynamic "denominator_aggregations" {
          for_each = condition_threshold.value.denominator_filter == null ? [] : [condition_threshold.value]
          content {
            alignment_period     = denominator_aggregations.value.alignment_period
            per_series_aligner   = denominator_aggregations.value.aligner
            cross_series_reducer = denominator_aggregations.value.reducer
            group_by_fields      = denominator_aggregations.value.group_by
          }
        }
      }
    }

    dynamic "condition_prometheus_query_language" {
      for_each = each.value.promql == null ? [] : [each.value.promql]
      content {
        query               = condition_prometheus_query_language.value.query
        duration            = condition_prometheus_query_language.value.duration
        evaluation_interval = "60s"
        alert_rule          = condition_prometheus_query_language.value.alert_rule
        rule_group          = "execution-quality"
        labels              = { severity = "warning" }
      }
    }
  }
}
