# Secret Manager: the API keys and each venue's credentials, and who may read which secret.
#
# Terraform creates these secrets but never their values, so keys and credentials stay out of the Terraform
# state: add a version before the first full apply (scripts/deploy.sh stops and prints the commands). The API
# keys' secret holds hashed key records (README, Access: `python -m shared.infra.access_keys new ...`), mounted on
# the API as a file it re-reads on a short TTL; the other secrets are read at version "latest" when an instance
# starts.

resource "google_secret_manager_secret" "api_keys" {
  secret_id = "${var.name}-api-keys"
  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret" "venue_credential" {
  for_each  = local.venue_credentials
  secret_id = "${var.name}-venue-${each.key}"
  replication {
    auto {}
  }
  labels = {
    venue = each.value.venue
  }

  depends_on = [google_project_service.enabled]
}

# Readers: each service function reads the secrets of its secret environment (and the Redis CA); each adapter
# reads REDIS_URL, the CA and its own venue's credentials only.
locals {
  function_secret_readers = merge(
    merge([for fn, env in local.service_secret_env : { for var_name, secret in env : "${fn}|${var_name}" => { function = fn, secret = secret } }]...),
    { for fn in local.service_functions : "${fn}|redis-ca" => { function = fn, secret = google_secret_manager_secret.redis_ca.secret_id } },
    { "api|api-keys" = { function = "api", secret = google_secret_manager_secret.api_keys.secret_id } },
  )
  adapter_secret_readers = merge(
    { for venue, _ in var.venues : "${venue}|redis-url" => { venue = venue, secret = google_secret_manager_secret.redis_url.secret_id } },
    { for venue, _ in var.venues : "${venue}|redis-ca" => { venue = venue, secret = google_secret_manager_secret.redis_ca.secret_id } },
    { for key, c in local.venue_credentials : "${c.venue}|${key}" => { venue = c.venue, secret = google_secret_manager_secret.venue_credential[key].secret_id } },
  )
}

resource "google_secret_manager_secret_iam_member" "function" {
  for_each  = local.function_secret_readers
  secret_id = each.value.secret
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.function[each.value.function].member
}

resource "google_secret_manager_secret_iam_member" "adapter" {
  for_each  = local.adapter_secret_readers
  secret_id = each.value.secret
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.adapter[each.value.venue].member
}
