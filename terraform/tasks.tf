# Cloud Tasks queues (submit, slices, sync) and who may enqueue. The tasks are named HTTP tasks with OIDC
# tokens of the tasks invoker, sent to SUBMIT/SYNC/SLICES_FUNCTION_URL (shared/infra/scheduler.py).

resource "google_cloud_tasks_queue" "queue" {
  for_each = var.queues
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

# Each service function may schedule submission, slice and sync work (the order service does all three), and
# the API's health check reads the submit queue.
resource "google_cloud_tasks_queue_iam_member" "enqueuer" {
  for_each = { for pair in setproduct(keys(var.queues), tolist(local.service_functions)) : "${pair[0]}|${pair[1]}" => {
    queue = pair[0], function = pair[1] }
  }
  name     = google_cloud_tasks_queue.queue[each.value.queue].name
  location = var.region
  role     = "roles/cloudtasks.enqueuer"
  member   = google_service_account.function[each.value.function].member
}

resource "google_cloud_tasks_queue_iam_member" "api_reads_submit_queue" {
  name     = google_cloud_tasks_queue.queue["submit_queue"].name
  location = var.region
  role     = "roles/cloudtasks.viewer"
  member   = google_service_account.function["api"].member
}
