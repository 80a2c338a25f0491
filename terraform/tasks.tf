# Cloud Tasks queues (submit, one per venue; slices, sync, reconcile, markouts) and who may enqueue. The tasks
# are named HTTP tasks with OIDC tokens of the tasks invoker, sent to SUBMIT/SYNC/SLICES_FUNCTION_URL
# (shared/infra/scheduler.py).

locals {
  # The queues of var.queues made once (per-venue ones, shared/topology.py PER_VENUE_QUEUES, are below).
  shared_queues = { for k, q in var.queues : k => q if k != "submit_queue" }
  # One submit queue per venue, named as Settings.submit_queue_for does: "<submit_queue>-<venue>" (venue names
  # have no underscore here), each with the submit_queue entry's limits: a slow venue delays only itself.
  submit_queues = { for venue, _ in var.venues : venue => merge(var.queues["submit_queue"], { name = "${var.queues["submit_queue"].name}-${venue}" }) }
  # Every queue id, for the enqueue grants: shared ones by Settings attribute, submit queues as submit_queue-<venue>.
  all_queues = merge(
    { for k, q in local.shared_queues : k => q.name },
    { for venue, q in local.submit_queues : "submit_queue-${venue}" => q.name },
  )
}

resource "google_cloud_tasks_queue" "queue" {
  for_each = local.shared_queues
  name     = each.value.name
  location = var.region

  rate_limits {
    max_dispatches_per_second = each.value.max_dispatches_per_second
    max_concurrent_dispatches = each.value.max_concurrent_dispatches
  }

  # The service retries retryable venue errors itself, as new named tasks with its own backoff; these retries
  # only cover a handler that crashed (answered 5xx). Every handler is idempotent.
  retry_config {
    max_attempts  = each.value.max_attempts
    min_backoff   = each.value.min_backoff
    max_backoff   = each.value.max_backoff
    max_doublings = 5
  }

  stackdriver_logging_config {
    sampling_ratio = 1.0
  }

  depends_on = [google_project_service.enabled]
}

# The same shape as "queue" above, kept a resource of its own on purpose: one for_each over both would move every
# deployed submit queue to a new address, which Terraform plans as delete and create, and Cloud Tasks refuses to
# re-create a deleted queue's name for up to 7 days (and a moved block cannot follow a for_each over var.venues).
resource "google_cloud_tasks_queue" "submit" {
  for_each = local.submit_queues
  name     = each.value.name
  location = var.region

  rate_limits {
    max_dispatches_per_second = each.value.max_dispatches_per_second
    max_concurrent_dispatches = each.value.max_concurrent_dispatches
  }

  retry_config {
    max_attempts  = each.value.max_attempts
    min_backoff   = each.value.min_backoff
    max_backoff   = each.value.max_backoff
    max_doublings = 5
  }

  stackdriver_logging_config {
    sampling_ratio = 1.0
  }

  depends_on = [google_project_service.enabled]
}

# Each service function may schedule submission, slice and sync work (the order service does all three), and
# the API's health check reads the sync queue.
resource "google_cloud_tasks_queue_iam_member" "enqueuer" {
  for_each = { for pair in setproduct(keys(local.all_queues), tolist(local.service_functions)) : "${pair[0]}|${pair[1]}" => {
    queue = local.all_queues[pair[0]], function = pair[1] }
  }
  name     = each.value.queue
  location = var.region
  role     = "roles/cloudtasks.enqueuer"
  member   = google_service_account.function[each.value.function].member
}

resource "google_cloud_tasks_queue_iam_member" "api_reads_sync_queue" {
  name     = google_cloud_tasks_queue.queue["sync_queue"].name
  location = var.region
  role     = "roles/cloudtasks.viewer"
  member   = google_service_account.function["api"].member
}
