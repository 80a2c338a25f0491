# Identities: one service account per function (per venue for the adapter), the invokers Cloud Tasks, Cloud
# Scheduler and Pub/Sub push call the functions as (OIDC identity tokens), the build identity, and the
# project-level roles. Roles on single resources (topics, queues, secrets, functions) sit next to those
# resources; this file holds the accounts and what cannot be granted on one resource.

resource "google_service_account" "function" {
  for_each     = local.service_functions
  account_id   = "${var.name}-fn-${each.key}"
  display_name = "Execution service function ${each.key}"

  depends_on = [google_project_service.enabled]
}

resource "google_service_account" "adapter" {
  for_each     = var.venues
  account_id   = "${var.name}-ad-${each.key}"
  display_name = "Execution service adapter for venue ${each.key}"

  depends_on = [google_project_service.enabled]
}

# The identity in the OIDC tokens of Cloud Tasks (TASKS_SERVICE_ACCOUNT): may invoke submit, sync and slices.
resource "google_service_account" "tasks_invoker" {
  account_id   = "${var.name}-tasks"
  display_name = "Cloud Tasks invoker of the execution service"

  depends_on = [google_project_service.enabled]
}

# Cloud Scheduler's identity: may invoke sweep, dms and the adapters' watchdog.
resource "google_service_account" "scheduler_invoker" {
  account_id   = "${var.name}-sched"
  display_name = "Cloud Scheduler invoker of the execution service"

  depends_on = [google_project_service.enabled]
}

# Pub/Sub push's identity: may invoke signals and heartbeats.
resource "google_service_account" "push_invoker" {
  account_id   = "${var.name}-push"
  display_name = "Pub/Sub push invoker of the execution service"

  depends_on = [google_project_service.enabled]
}

# Cloud Build builds the functions' images as this account (not the default compute account).
resource "google_service_account" "build" {
  account_id   = "${var.name}-build"
  display_name = "Builds the execution service's functions"

  depends_on = [google_project_service.enabled]
}

# Firestore has no finer grant than the project (each service function loads the whole order service, so each
# reads and writes orders; the adapters get nothing here).
resource "google_project_iam_member" "function_firestore" {
  for_each = local.service_functions
  project  = var.project_id
  role     = "roles/datastore.user"
  member   = google_service_account.function[each.key].member
}

# A build writes its logs, pushes the image to Artifact Registry (gcf-artifacts) and reads the source (below).
# Should a build fail on a permission, roles/cloudbuild.builds.builder is Google's broader role for builders.
resource "google_project_iam_member" "build" {
  for_each = toset(["roles/logging.logWriter", "roles/artifactregistry.writer"])
  project  = var.project_id
  role     = each.value
  member   = google_service_account.build.member
}

resource "google_storage_bucket_iam_member" "build_reads_source" {
  bucket = google_storage_bucket.source.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.build.member
}

# Cloud Functions (2nd gen) stages the source it builds in its own bucket, gcf-v2-sources-PROJECT_NUMBER-REGION,
# and the build reads it from there as the build service account: without this the build fails on a
# permission. That bucket is made by Cloud Functions on the first deployment (it may not exist before this
# grant), so the grant is on the project, limited by a condition to that one bucket's objects.
resource "google_project_iam_member" "build_reads_staged_source" {
  project = var.project_id
  role    = "roles/storage.objectViewer"
  member  = google_service_account.build.member

  condition {
    title       = "staged-function-source"
    description = "Only the bucket Cloud Functions stages this region's function sources in."
    expression  = "resource.name.startsWith(\"projects/_/buckets/${local.staged_source_bucket}\")"
  }
}

locals {
  staged_source_bucket = "gcf-v2-sources-${data.google_project.this.number}-${var.region}"
}

# A function creating a task with an OIDC token as the tasks invoker must be allowed to act as it.
resource "google_service_account_iam_member" "functions_act_as_tasks_invoker" {
  for_each           = local.service_functions
  service_account_id = google_service_account.tasks_invoker.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.function[each.key].member
}

# Pub/Sub's service agent mints the push tokens as the push invoker (needed on projects created before
# 2021-04; harmless after), and moves undeliverable messages to the dead-letter topics (pubsub.tf).
resource "google_service_account_iam_member" "pubsub_agent_tokens" {
  service_account_id = google_service_account.push_invoker.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${local.pubsub_service_agent}"
}

locals {
  pubsub_service_agent = "service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}
