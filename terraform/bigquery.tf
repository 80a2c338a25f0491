# BigQuery: the TCA rows and the order events, streamed by Pub/Sub BigQuery subscriptions (no code of ours in
# between), and the view tca_aggregate over the rows.
#
# Schemas. tca_records is written with use_table_schema: each message (a JSON object, shared/app/tca_pipeline.py
# tca_row) goes field by field into the table's columns, declared in local.tca_records_schema, which
# tests/terraform/tfcheck.py checks against the row's fields. The alternative, a Pub/Sub schema on the topic with
# use_topic_schema, would put a schema on google_pubsub_topic.topic, a for_each shared by every topic (a dynamic
# schema_settings block for one key), and make publishing fail for a row the schema refuses, stopping the TCA
# pipeline; with the table's schema a row BigQuery refuses goes to the dead-letter topic and nothing upstream
# notices. Decimals arrive as JSON strings ("1.234500"): the BigQuery Storage Write API, which these
# subscriptions use, takes NUMERIC and BIGNUMERIC from strings. bps and ratios are rounded to 6 and 9 decimals
# (shared/domain/tca.py): NUMERIC (scale 9). Quantities, notional and average price keep the fills' full precision
# (Decimal, up to 28 digits): BIGNUMERIC (scale 38). The Pub/Sub emulator ignores all of this locally.
#
# order_events is written without a schema: the whole message body in a JSON column (data) beside the metadata
# (message_id, publish_time, and the attributes order_id, status, sequence). An event nests a map of
# commissions keyed by currency and the last fill, which no fixed columns fit, and its fields grow with the
# service; JSON_VALUE(data, '$.status') reads any of them (docs/monitoring.md has a query).
#
# Each subscription dead-letters what BigQuery refuses after pubsub_max_delivery_attempts to the topic's own
# dead-letter topic (pubsub.tf), as the push subscriptions do.

locals {
  bigquery_location = coalesce(var.bigquery_location, var.region)

  # The TCA row, column by column (tca_row in shared/app/tca_pipeline.py; version: the highest per order wins).
  tca_records_schema = [
    { name = "order_id", type = "STRING", mode = "REQUIRED", description = "the top-level order" },
    { name = "version", type = "INT64", mode = "REQUIRED", description = "1 when it ended, +1 when its markouts complete: keep the highest" },
    { name = "complete", type = "BOOL", mode = "NULLABLE", description = "every markout is in" },
    { name = "algorithm", type = "STRING", mode = "NULLABLE", description = "DIRECT, TWAP, VWAP, ICEBERG, POV or SMART" },
    { name = "venue", type = "STRING", mode = "NULLABLE", description = "the exchange" },
    { name = "symbol", type = "STRING", mode = "NULLABLE", description = "" },
    { name = "side", type = "STRING", mode = "NULLABLE", description = "buy or sell" },
    { name = "strategy_id", type = "STRING", mode = "NULLABLE", description = "" },
    { name = "status", type = "STRING", mode = "NULLABLE", description = "the order's final status" },
    { name = "created_at", type = "INT64", mode = "NULLABLE", description = "epoch ms" },
    { name = "ended_at", type = "INT64", mode = "NULLABLE", description = "epoch ms" },
    { name = "quantity", type = "BIGNUMERIC", mode = "NULLABLE", description = "" },
    { name = "filled_quantity", type = "BIGNUMERIC", mode = "NULLABLE", description = "" },
    { name = "notional", type = "BIGNUMERIC", mode = "NULLABLE", description = "sum of fill quantity x price, quote currency" },
    { name = "average_price", type = "BIGNUMERIC", mode = "NULLABLE", description = "" },
    { name = "fill_ratio", type = "NUMERIC", mode = "NULLABLE", description = "filled / ordered" },
    { name = "arrival_cost_bps", type = "NUMERIC", mode = "NULLABLE", description = "positive: it cost us" },
    { name = "shortfall_bps", type = "NUMERIC", mode = "NULLABLE", description = "implementation shortfall" },
    { name = "shortfall_delay_bps", type = "NUMERIC", mode = "NULLABLE", description = "its delay part" },
    { name = "shortfall_execution_bps", type = "NUMERIC", mode = "NULLABLE", description = "its execution part" },
    { name = "shortfall_opportunity_bps", type = "NUMERIC", mode = "NULLABLE", description = "its opportunity part" },
    { name = "shortfall_fees_bps", type = "NUMERIC", mode = "NULLABLE", description = "its fees part" },
    { name = "interval_vwap_cost_bps", type = "NUMERIC", mode = "NULLABLE", description = "" },
    { name = "twap_mid_cost_bps", type = "NUMERIC", mode = "NULLABLE", description = "" },
    { name = "fees_bps", type = "NUMERIC", mode = "NULLABLE", description = "" },
    { name = "maker_share", type = "NUMERIC", mode = "NULLABLE", description = "" },
    { name = "participation", type = "NUMERIC", mode = "NULLABLE", description = "" },
    { name = "schedule_deviation_rms", type = "NUMERIC", mode = "NULLABLE", description = "" },
    { name = "router_vs_best_venue_bps", type = "NUMERIC", mode = "NULLABLE", description = "" },
    { name = "router_vs_consolidated_bps", type = "NUMERIC", mode = "NULLABLE", description = "" },
    { name = "markout_pre10s_bps", type = "NUMERIC", mode = "NULLABLE", description = "positive: in our favour" },
    { name = "markout_1s_bps", type = "NUMERIC", mode = "NULLABLE", description = "" },
    { name = "markout_10s_bps", type = "NUMERIC", mode = "NULLABLE", description = "" },
    { name = "markout_60s_bps", type = "NUMERIC", mode = "NULLABLE", description = "" },
    { name = "markout_300s_bps", type = "NUMERIC", mode = "NULLABLE", description = "" },
    { name = "decision_to_submit_ms", type = "INT64", mode = "NULLABLE", description = "" },
    { name = "submit_to_ack_ms", type = "INT64", mode = "NULLABLE", description = "" },
    { name = "ack_to_first_fill_ms", type = "INT64", mode = "NULLABLE", description = "" },
    { name = "cancel_to_confirm_ms", type = "INT64", mode = "NULLABLE", description = "" },
    { name = "rejected", type = "BOOL", mode = "NULLABLE", description = "" },
    { name = "flags", type = "STRING", mode = "REPEATED", description = "what could not be computed" },
  ]

  # What a BigQuery subscription without a schema writes, with write_metadata.
  order_events_schema = [
    { name = "subscription_name", type = "STRING", mode = "NULLABLE", description = "" },
    { name = "message_id", type = "STRING", mode = "NULLABLE", description = "" },
    { name = "publish_time", type = "TIMESTAMP", mode = "NULLABLE", description = "" },
    { name = "data", type = "JSON", mode = "NULLABLE", description = "the order event (shared/domain/orders.py OrderEvent.as_message)" },
    { name = "attributes", type = "JSON", mode = "NULLABLE", description = "order_id, status, sequence (and the ordering key)" },
  ]
}

resource "google_bigquery_dataset" "execution" {
  # checkov:skip=CKV_GCP_81:Google-managed encryption, as for the topics these tables are fed from (pubsub.tf): execution costs, no personal data.
  dataset_id    = var.bigquery_dataset_id
  friendly_name = "${var.name} execution quality"
  description   = "TCA rows and order events of ${var.name}, streamed from Pub/Sub (terraform/bigquery.tf)."
  location      = local.bigquery_location

  depends_on = [google_project_service.enabled]
}

resource "google_bigquery_table" "tca_records" {
  # checkov:skip=CKV_GCP_80:Google-managed encryption, as for the dataset above.
  dataset_id          = google_bigquery_dataset.execution.dataset_id
  table_id            = "tca_records"
  description         = "One row per published TCA row version of a top-level order (keep the highest version per order_id; tca_aggregate does)."
  deletion_protection = var.bigquery_deletion_protection
  schema              = jsonencode(local.tca_records_schema)
  clustering          = ["venue", "algorithm", "symbol"]

  # Ingestion time: the row's own times are epoch ms integers, which BigQuery cannot partition by day.
  time_partitioning {
    type = "DAY"
  }
}

resource "google_bigquery_table" "order_events" {
  # checkov:skip=CKV_GCP_80:Google-managed encryption, as for the dataset above.
  dataset_id          = google_bigquery_dataset.execution.dataset_id
  table_id            = "order_events"
  description         = "Every order event as published (data: the message body as JSON), with its Pub/Sub metadata."
  deletion_protection = var.bigquery_deletion_protection
  schema              = jsonencode(local.order_events_schema)

  time_partitioning {
    type  = "DAY"
    field = "publish_time"
  }
}

# Per algorithm, venue, symbol, side and strategy: the latest version of each order's row, then counts, notional,
# costs (notional-weighted mean and quantiles), fills, rejects, markouts and latencies. Written with SQL keywords
# and functions in capitals and column names in lower case: tfcheck reads the lower-case names as columns of
# tca_records (or aliases the query defines with AS).
resource "google_bigquery_table" "tca_aggregate" {
  # checkov:skip=CKV_GCP_80:A view stores no data of its own to encrypt.
  dataset_id          = google_bigquery_dataset.execution.dataset_id
  table_id            = "tca_aggregate"
  description         = "TCA aggregated per algorithm, venue, symbol, side and strategy_id over the latest row of each order."
  deletion_protection = var.bigquery_deletion_protection

  view {
    use_legacy_sql = false
    query          = <<-EOT
      WITH latest AS (
        SELECT * EXCEPT (row_rank)
        FROM (
          SELECT *, ROW_NUMBER() OVER (PARTITION BY order_id ORDER BY version DESC) AS row_rank
          FROM `${google_bigquery_table.tca_records.project}.${google_bigquery_table.tca_records.dataset_id}.${google_bigquery_table.tca_records.table_id}`
        )
        WHERE row_rank = 1
      )
      SELECT
        algorithm, venue, symbol, side, strategy_id,
        COUNT(*) AS orders,
        SUM(notional) AS notional,
        SAFE_DIVIDE(SUM(arrival_cost_bps * notional), SUM(IF(arrival_cost_bps IS NULL, NULL, notional))) AS arrival_cost_bps_weighted,
        APPROX_QUANTILES(arrival_cost_bps, 100 IGNORE NULLS)[SAFE_OFFSET(50)] AS arrival_cost_bps_p50,
        APPROX_QUANTILES(arrival_cost_bps, 100 IGNORE NULLS)[SAFE_OFFSET(90)] AS arrival_cost_bps_p90,
        SAFE_DIVIDE(SUM(shortfall_bps * notional), SUM(IF(shortfall_bps IS NULL, NULL, notional))) AS shortfall_bps_weighted,
        AVG(fill_ratio) AS fill_ratio_mean,
        AVG(IF(rejected, 1, 0)) AS reject_rate,
        AVG(maker_share) AS maker_share_mean,
        AVG(fees_bps) AS fees_bps_mean,
        AVG(markout_pre10s_bps) AS markout_pre10s_bps_mean,
        AVG(markout_1s_bps) AS markout_1s_bps_mean,
        AVG(markout_10s_bps) AS markout_10s_bps_mean,
        AVG(markout_60s_bps) AS markout_60s_bps_mean,
        AVG(markout_300s_bps) AS markout_300s_bps_mean,
        APPROX_QUANTILES(decision_to_submit_ms, 100 IGNORE NULLS)[SAFE_OFFSET(50)] AS decision_to_submit_ms_p50,
        APPROX_QUANTILES(submit_to_ack_ms, 100 IGNORE NULLS)[SAFE_OFFSET(50)] AS submit_to_ack_ms_p50,
        APPROX_QUANTILES(ack_to_first_fill_ms, 100 IGNORE NULLS)[SAFE_OFFSET(50)] AS ack_to_first_fill_ms_p50,
        APPROX_QUANTILES(cancel_to_confirm_ms, 100 IGNORE NULLS)[SAFE_OFFSET(50)] AS cancel_to_confirm_ms_p50,
        MIN(created_at) AS first_created_at,
        MAX(ended_at) AS last_ended_at
      FROM latest
      GROUP BY algorithm, venue, symbol, side, strategy_id
    EOT
  }
}

# The Pub/Sub service agent writes the subscriptions' rows (and reads the tables' metadata to check them).
resource "google_bigquery_dataset_iam_member" "pubsub_writer" {
  for_each   = toset(["roles/bigquery.dataEditor", "roles/bigquery.metadataViewer"])
  dataset_id = google_bigquery_dataset.execution.dataset_id
  role       = each.value
  member     = "serviceAccount:${local.pubsub_service_agent}"
}

resource "google_pubsub_subscription" "tca_records_bigquery" {
  name                       = "${var.topics["tca_records_topic"]}-bigquery"
  topic                      = google_pubsub_topic.topic["tca_records_topic"].id
  message_retention_duration = "604800s"
  expiration_policy {
    ttl = ""
  }

  bigquery_config {
    table            = "${google_bigquery_table.tca_records.project}.${google_bigquery_table.tca_records.dataset_id}.${google_bigquery_table.tca_records.table_id}"
    use_table_schema = true
    # A field the table lacks fails the row (dead-lettered) instead of being dropped unseen; tfcheck keeps the
    # table's columns equal to the row's fields.
    drop_unknown_fields = false
    write_metadata      = false
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter["tca_records_topic"].id
    max_delivery_attempts = local.max_delivery_attempts
  }

  depends_on = [google_bigquery_dataset_iam_member.pubsub_writer]
}

resource "google_pubsub_subscription" "order_events_bigquery" {
  name                       = "${var.topics["order_events_topic"]}-bigquery"
  topic                      = google_pubsub_topic.topic["order_events_topic"].id
  message_retention_duration = "604800s"
  expiration_policy {
    ttl = ""
  }

  bigquery_config {
    table          = "${google_bigquery_table.order_events.project}.${google_bigquery_table.order_events.dataset_id}.${google_bigquery_table.order_events.table_id}"
    write_metadata = true
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter["order_events_topic"].id
    max_delivery_attempts = local.max_delivery_attempts
  }

  depends_on = [google_bigquery_dataset_iam_member.pubsub_writer]
}

# Forwarding to the dead-letter topic: the service agent acknowledges on the source subscription (it already
# publishes to every dead-letter topic, pubsub.tf).
resource "google_pubsub_subscription_iam_member" "bigquery_dead_letter_subscriber" {
  for_each = {
    tca_records  = google_pubsub_subscription.tca_records_bigquery.name
    order_events = google_pubsub_subscription.order_events_bigquery.name
  }
  subscription = each.value
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${local.pubsub_service_agent}"
}
