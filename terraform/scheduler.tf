# Cloud Scheduler: the reconciliation sweep and the dead man's switch check every minute, and each adapter's
# watchdog tick (venues whose cancel-all-after runs in the adapter, where no instance may stay warm). Each job
# calls its function with an OIDC token of the scheduler invoker.

resource "google_cloud_scheduler_job" "function" {
  for_each         = local.scheduler_jobs
  name             = "${var.name}-${each.key}"
  region           = var.region
  schedule         = each.value.schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = each.value.attempt_deadline

  # The next run comes a minute later: no retries of a missed run.
  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.service[each.key].service_config[0].uri
    body        = base64encode(each.value.body)
    headers = {
      "Content-Type" = "application/json"
    }
    oidc_token {
      service_account_email = google_service_account.scheduler_invoker.email
      audience              = google_cloudfunctions2_function.service[each.key].service_config[0].uri
    }
  }

  depends_on = [google_project_service.enabled, google_cloud_run_service_iam_member.service_invoker]
}

resource "google_cloud_scheduler_job" "adapter_watchdog" {
  for_each         = { for venue, v in var.venues : venue => v if v.watchdog_job }
  name             = "${var.name}-watchdog-${each.key}"
  region           = var.region
  schedule         = "* * * * *"
  time_zone        = "Etc/UTC"
  attempt_deadline = "60s"

  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = "${google_cloudfunctions2_function.adapter[each.key].service_config[0].uri}/watchdog"
    oidc_token {
      service_account_email = google_service_account.scheduler_invoker.email
      audience              = google_cloudfunctions2_function.adapter[each.key].service_config[0].uri
    }
  }

  depends_on = [google_project_service.enabled, google_cloud_run_service_iam_member.adapter_invoker]
}
