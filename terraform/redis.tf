# Memorystore for Redis with AUTH and in-transit encryption (TLS, port 6378), on the private network the
# functions reach through the VPC connector. REDIS_URL (with the AUTH string) and the server CA go to Secret
# Manager; the functions get REDIS_URL as a secret environment variable and the CA as a mounted file.

resource "google_redis_instance" "this" {
  name                    = "${var.name}-redis"
  region                  = var.region
  tier                    = var.redis_tier
  memory_size_gb          = var.redis_memory_gb
  redis_version           = "REDIS_7_2"
  authorized_network      = google_compute_network.this.id
  connect_mode            = "DIRECT_PEERING"
  auth_enabled            = true
  transit_encryption_mode = "SERVER_AUTHENTICATION"

  # No persistence (basic tier): losing the cache is survivable (the service keeps working, slower; Firestore
  # wins every disagreement). The default eviction policy (volatile-lru) is kept on purpose: only keys with a
  # TTL may be evicted, never the dead man's switches or the adapters' placed-order ids.

  depends_on = [google_project_service.enabled]
}

# The functions verify the server's certificate against this instance's CA (REDIS_CA_FILE, the mounted
# redis_ca secret) and do not check the hostname: REDIS_URL reaches the instance by its IP, which the
# certificate does not name, and only this instance's CA can sign a certificate it accepts
# (shared/infra/redis_client.py; redis-py 8 checks the hostname unless told not to).
#
# Trade-off: the AUTH string is in Terraform's state (the instance resource exports it whatever we do) and in
# this secret's version; protect the state bucket accordingly. Rotating AUTH: a new apply writes a new version,
# and new function instances read it ("latest").
resource "google_secret_manager_secret" "redis_url" {
  secret_id = "${var.name}-redis-url"
  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_version" "redis_url" {
  secret      = google_secret_manager_secret.redis_url.id
  secret_data = "rediss://:${urlencode(google_redis_instance.this.auth_string)}@${google_redis_instance.this.host}:${google_redis_instance.this.port}/0"
}

resource "google_secret_manager_secret" "redis_ca" {
  secret_id = "${var.name}-redis-ca"
  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_version" "redis_ca" {
  secret      = google_secret_manager_secret.redis_ca.id
  secret_data = join("\n", [for c in google_redis_instance.this.server_ca_certs : c.cert])
}
