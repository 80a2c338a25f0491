# Pub/Sub: the service's topics, a dead-letter topic per topic, and a push subscription per Pub/Sub-triggered
# function.
#
# Why explicit push subscriptions and not the functions' Eventarc event_trigger: the subscription Eventarc
# creates for a trigger is managed by Eventarc, and its dead-letter policy cannot be set through the trigger, so
# a crashing signal would be retried until the message expires instead of landing in the dead-letter topic
# after pubsub_max_delivery_attempts. An explicit subscription gets the retry policy, the dead-letter topic and
# the OIDC identity here, has the name the local stack uses (shared/topology.py, subscription_name:
# "<topic>-<function>"), and delivers the same push body the functions already accept locally (functions
# framework turns it into a CloudEvent).

resource "google_pubsub_topic" "topic" {
  # checkov:skip=CKV_GCP_83:Google-managed encryption is enough for order flow without personal data; a customer-managed KMS key costs a key and its operations for every topic.
  for_each = var.topics
  name     = each.value

  message_retention_duration = "86400s"

  depends_on = [google_project_service.enabled]
}

# Settings.dead_letter_topic(topic) == "<topic>-dead-letter". order-events has no subscriber of the service;
# its dead-letter topic is there for the consumers' subscriptions.
resource "google_pubsub_topic" "dead_letter" {
  # checkov:skip=CKV_GCP_83:Same as the topics above: Google-managed encryption, no customer-managed key.
  for_each = var.topics
  name     = "${each.value}-dead-letter"

  depends_on = [google_project_service.enabled]
}

# Dead-lettered messages are kept (7 days) for inspection and replay: a topic without a subscription drops them.
resource "google_pubsub_subscription" "dead_letter" {
  for_each = var.topics
  name     = "${each.value}-dead-letter-sub"
  topic    = google_pubsub_topic.dead_letter[each.key].id

  message_retention_duration = "604800s"
  ack_deadline_seconds       = 60
  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_subscription" "push" {
  for_each = local.pubsub_triggers
  name     = "${var.topics[each.value]}-${each.key}"
  topic    = google_pubsub_topic.topic[each.value].id

  # At least the function's timeout, so a slow delivery is not redelivered while it still runs.
  ack_deadline_seconds       = min(600, local.function_config[each.key].timeout_seconds)
  message_retention_duration = "604800s"
  expiration_policy {
    ttl = ""
  }

  push_config {
    # The path names the topic, so functions-framework gives the CloudEvent the source Eventarc would (as the
    # local stack does); the token's audience is the service URL itself.
    push_endpoint = "${google_cloudfunctions2_function.service[each.key].service_config[0].uri}/projects/${var.project_id}/topics/${var.topics[each.value]}"
    oidc_token {
      service_account_email = google_service_account.push_invoker.email
      audience              = google_cloudfunctions2_function.service[each.key].service_config[0].uri
    }
  }

  # A function that crashes (5xx) gets the message again with backoff (RETRY_POLICY_RETRY); a message that fails
  # max_delivery_attempts times moves to the dead-letter topic. A signal that cannot become an order is
  # acknowledged (and answered by a rejected event), never retried.
  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[each.value].id
    max_delivery_attempts = local.max_delivery_attempts
  }

  depends_on = [google_cloud_run_service_iam_member.service_invoker]
}

# Pub/Sub's service agent forwards undeliverable messages: it publishes to the dead-letter topic and
# acknowledges on the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = var.topics
  topic    = google_pubsub_topic.dead_letter[each.key].name
  role     = "roles/pubsub.publisher"
  member   = "serviceAccount:${local.pubsub_service_agent}"
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each     = local.pubsub_triggers
  subscription = google_pubsub_subscription.push[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${local.pubsub_service_agent}"
}

# Every service function publishes order events (bus.py); the API's health check also reads the topic.
resource "google_pubsub_topic_iam_member" "events_publisher" {
  for_each = local.service_functions
  topic    = google_pubsub_topic.topic["order_events_topic"].name
  role     = "roles/pubsub.publisher"
  member   = google_service_account.function[each.key].member
}

# The TCA functions publish each top-level order's TCA row (shared/app/tca_pipeline.py); bigquery.tf streams it.
resource "google_pubsub_topic_iam_member" "tca_records_publisher" {
  for_each = toset(["tca", "markouts"])
  topic    = google_pubsub_topic.topic["tca_records_topic"].name
  role     = "roles/pubsub.publisher"
  member   = google_service_account.function[each.key].member
}

resource "google_pubsub_topic_iam_member" "api_reads_events_topic" {
  topic  = google_pubsub_topic.topic["order_events_topic"].name
  role   = "roles/pubsub.viewer"
  member = google_service_account.function["api"].member
}

# Outside the service: who may send signals and heartbeats, and who may consume order events.
resource "google_pubsub_topic_iam_member" "signal_publishers" {
  for_each = { for pair in setproduct(["signals_topic", "heartbeats_topic"], var.signal_publishers) : "${pair[0]}|${pair[1]}" => {
    topic = pair[0], member = pair[1] }
  }
  topic  = google_pubsub_topic.topic[each.value.topic].name
  role   = "roles/pubsub.publisher"
  member = each.value.member
}

resource "google_pubsub_topic_iam_member" "event_subscribers" {
  for_each = toset(var.event_subscribers)
  topic    = google_pubsub_topic.topic["order_events_topic"].name
  role     = "roles/pubsub.subscriber"
  member   = each.value
}
