# The Cloud Functions (2nd gen): one per entry point of shared/topology.py, all from one source archive, and
# one adapter function per venue. Who may invoke each (roles/run.invoker on its Cloud Run service) is here too:
# nobody is allowed unauthenticated, the API included.

resource "google_cloudfunctions2_function" "service" {
  for_each = local.internal_functions
  name     = "${var.name}-${each.key}"
  location = var.region

  build_config {
    runtime         = "python312"
    entry_point     = each.key
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = local.function_config[each.key].memory
    available_cpu                    = local.function_config[each.key].cpu
    timeout_seconds                  = local.function_config[each.key].timeout_seconds
    max_instance_request_concurrency = local.function_config[each.key].concurrency
    min_instance_count               = local.function_config[each.key].min_instances
    max_instance_count               = local.function_config[each.key].max_instances
    service_account_email            = google_service_account.function[each.key].email
    ingress_settings                 = local.ingress[each.key]
    all_traffic_on_latest_revision   = true
    vpc_connector                    = google_vpc_access_connector.this.id
    vpc_connector_egress_settings    = "PRIVATE_RANGES_ONLY"
    environment_variables            = local.service_env

    dynamic "secret_environment_variables" {
      for_each = local.service_secret_env[each.key]
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }

    secret_volumes {
      mount_path = local.redis_ca_dir
      project_id = var.project_id
      secret     = google_secret_manager_secret.redis_ca.secret_id
      versions {
        version = "latest"
        path    = local.redis_ca_file
      }
    }

    # The API's keys (hashed records), read again every API_KEYS_TTL_S: a mounted secret is fetched at
    # "latest" whenever it is read, so a new version rotates the keys without a redeploy.
    dynamic "secret_volumes" {
      for_each = local.service_key_volumes[each.key]
      content {
        mount_path = local.api_keys_dir
        project_id = var.project_id
        secret     = secret_volumes.value
        versions {
          version = "latest"
          path    = local.api_keys_file
        }
      }
    }
  }

  depends_on = [
    google_project_iam_member.build,
    google_storage_bucket_iam_member.build_reads_source,
    google_project_iam_member.build_reads_staged_source,
    google_secret_manager_secret_iam_member.function,
    google_secret_manager_secret_version.redis_url,
    google_secret_manager_secret_version.redis_ca,
  ]
}

# The API: the service functions' settings (keep the two blocks in step: tests/terraform checks that they
# differ only in the function's name), as a resource of its own so that the one check true of it alone is
# skipped for it alone.
resource "google_cloudfunctions2_function" "api" {
  # checkov:skip=CKV_GCP_124:The API is ALLOW_ALL because its callers are outside Google; it still requires an identity token with run.invoker (var.api_invokers) and an API key.
  name     = "${var.name}-api"
  location = var.region

  build_config {
    runtime         = "python312"
    entry_point     = "api"
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = local.function_config["api"].memory
    available_cpu                    = local.function_config["api"].cpu
    timeout_seconds                  = local.function_config["api"].timeout_seconds
    max_instance_request_concurrency = local.function_config["api"].concurrency
    min_instance_count               = local.function_config["api"].min_instances
    max_instance_count               = local.function_config["api"].max_instances
    service_account_email            = google_service_account.function["api"].email
    ingress_settings                 = "ALLOW_ALL" # its callers are outside Google
    all_traffic_on_latest_revision   = true
    vpc_connector                    = google_vpc_access_connector.this.id
    vpc_connector_egress_settings    = "PRIVATE_RANGES_ONLY"
    environment_variables            = local.service_env

    dynamic "secret_environment_variables" {
      for_each = local.service_secret_env["api"]
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }

    secret_volumes {
      mount_path = local.redis_ca_dir
      project_id = var.project_id
      secret     = google_secret_manager_secret.redis_ca.secret_id
      versions {
        version = "latest"
        path    = local.redis_ca_file
      }
    }

    # The API's keys (hashed records), read again every API_KEYS_TTL_S: a mounted secret is fetched at
    # "latest" whenever it is read, so a new version rotates the keys without a redeploy.
    dynamic "secret_volumes" {
      for_each = local.service_key_volumes["api"]
      content {
        mount_path = local.api_keys_dir
        project_id = var.project_id
        secret     = secret_volumes.value
        versions {
          version = "latest"
          path    = local.api_keys_file
        }
      }
    }
  }

  depends_on = [
    google_project_iam_member.build,
    google_storage_bucket_iam_member.build_reads_source,
    google_project_iam_member.build_reads_staged_source,
    google_secret_manager_secret_iam_member.function,
    google_secret_manager_secret_version.redis_url,
    google_secret_manager_secret_version.redis_ca,
  ]
}

# Deployments made before the API had a resource of its own keep their API function (no destroy and create).
moved {
  from = google_cloudfunctions2_function.service["api"]
  to   = google_cloudfunctions2_function.api
}

resource "google_cloudfunctions2_function" "adapter" {
  # checkov:skip=CKV_GCP_124:The service functions call the adapters at their run.app URL over the internet (their VPC egress covers private ranges only); every call still needs an identity token with run.invoker.
  for_each = var.venues
  name     = "${var.name}-adapter-${each.key}"
  location = var.region

  build_config {
    runtime         = "python312"
    entry_point     = "adapter"
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = local.function_config["adapter"].memory
    available_cpu                    = local.function_config["adapter"].cpu
    timeout_seconds                  = local.function_config["adapter"].timeout_seconds
    max_instance_request_concurrency = local.function_config["adapter"].concurrency
    min_instance_count               = local.function_config["adapter"].min_instances
    max_instance_count               = local.function_config["adapter"].max_instances
    service_account_email            = google_service_account.adapter[each.key].email
    # Called by the service functions, whose requests to *.run.app leave through the internet (egress is
    # private ranges only): so not internal-only. Every call needs an identity token with run.invoker.
    ingress_settings               = "ALLOW_ALL"
    all_traffic_on_latest_revision = true
    vpc_connector                  = google_vpc_access_connector.this.id
    # Everything, the venues included, through the connector and Cloud NAT: one static egress address
    # (main.tf, google_compute_router_nat.venue_egress) that venue API keys can be allow-listed for.
    vpc_connector_egress_settings = "ALL_TRAFFIC"

    # AdapterSettings (shared/infra/config.py).
    environment_variables = {
      GOOGLE_CLOUD_PROJECT = var.project_id
      VENUE_NAME           = each.key
      VENUE_EXCHANGE_ID    = each.value.exchange_id
      VENUE_SANDBOX        = tostring(each.value.sandbox)
      VENUE_TIMEOUT_MS     = tostring(each.value.timeout_ms)
      VENUE_REQUEST_BUDGET = each.value.request_budget == null ? "" : tostring(each.value.request_budget)
      LOG_LEVEL            = var.log_level
      REDIS_CA_FILE        = "${local.redis_ca_dir}/${local.redis_ca_file}"
    }

    secret_environment_variables {
      key        = "REDIS_URL"
      project_id = var.project_id
      secret     = google_secret_manager_secret.redis_url.secret_id
      version    = "latest"
    }

    dynamic "secret_environment_variables" {
      for_each = toset(each.value.credentials)
      content {
        key        = local.venue_credential_env[secret_environment_variables.value]
        project_id = var.project_id
        secret     = google_secret_manager_secret.venue_credential["${each.key}-${replace(secret_environment_variables.value, "_", "-")}"].secret_id
        version    = "latest"
      }
    }

    secret_volumes {
      mount_path = local.redis_ca_dir
      project_id = var.project_id
      secret     = google_secret_manager_secret.redis_ca.secret_id
      versions {
        version = "latest"
        path    = local.redis_ca_file
      }
    }
  }

  depends_on = [
    google_project_iam_member.build,
    google_storage_bucket_iam_member.build_reads_source,
    google_project_iam_member.build_reads_staged_source,
    google_secret_manager_secret_iam_member.adapter,
    google_secret_manager_secret_version.redis_url,
    google_secret_manager_secret_version.redis_ca,
    google_compute_router_nat.venue_egress, # no venue call may leave before the static address is in place
  ]
}

# Invokers. A gen2 function is a Cloud Run service of the same name: roles/run.invoker on that service is what
# lets a caller in.
locals {
  service_invokers = merge(
    { for m in var.api_invokers : "api|${m}" => { function = "api", member = m } },
    { for fn, _ in local.tasks_triggers : "${fn}|tasks" => { function = fn, member = google_service_account.tasks_invoker.member } },
    { for fn, _ in local.scheduler_jobs : "${fn}|scheduler" => { function = fn, member = google_service_account.scheduler_invoker.member } },
    { for fn, _ in local.pubsub_triggers : "${fn}|push" => { function = fn, member = google_service_account.push_invoker.member } },
  )
  # Every service function calls the adapters (orders, health, the dead man's switch); Cloud Scheduler calls
  # their watchdog.
  adapter_invokers = merge(
    { for pair in setproduct(keys(var.venues), tolist(local.service_functions)) : "${pair[0]}|${pair[1]}" => {
      venue = pair[0], member = google_service_account.function[pair[1]].member }
    },
    { for venue, v in var.venues : "${venue}|scheduler" => { venue = venue, member = google_service_account.scheduler_invoker.member } if v.watchdog_job },
  )
}

resource "google_cloud_run_service_iam_member" "service_invoker" {
  for_each = local.service_invokers
  location = var.region
  service  = each.value.function == "api" ? google_cloudfunctions2_function.api.name : google_cloudfunctions2_function.service[each.value.function].name
  role     = "roles/run.invoker"
  member   = each.value.member
}

resource "google_cloud_run_service_iam_member" "adapter_invoker" {
  for_each = local.adapter_invokers
  location = var.region
  service  = google_cloudfunctions2_function.adapter[each.value.venue].name
  role     = "roles/run.invoker"
  member   = each.value.member
}
