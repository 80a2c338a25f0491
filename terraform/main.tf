# The shape of the deployment in one place (locals), the Google APIs it enables, the source archive upload and
# the private network that reaches Memorystore.
#
# The function lists below mirror shared/topology.py (FUNCTIONS); tests/terraform checks they agree, and that
# every environment variable set here is one shared/infra/config.py reads.

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  # Every entry point of shared/topology.py except the per-venue adapter (functions.tf deploys that per venue):
  # the API (its own resource, the only one reachable from outside Google) and the internal ones.
  internal_functions = toset(["signals", "submit", "sync", "slices", "sweep", "heartbeats", "dms", "tca", "markouts"])
  service_functions  = setunion(local.internal_functions, ["api"])

  # Pub/Sub-triggered functions and their topic (the Settings attribute, a key of var.topics).
  pubsub_triggers = {
    signals    = "signals_topic"
    heartbeats = "heartbeats_topic"
    tca        = "order_events_topic"
  }

  # Cloud Tasks-triggered functions and their queue (the Settings attribute, a key of var.queues).
  tasks_triggers = {
    submit   = "submit_queue"
    sync     = "sync_queue"
    slices   = "slices_queue"
    markouts = "tca_queue"
  }

  # Cloud Scheduler-triggered functions. Cloud Scheduler runs at most once a minute, so dms is asked to keep
  # checking every second for 55 s of each minute (functions/tasks.py, DmsCheck.for_s).
  scheduler_jobs = {
    sweep = { schedule = "* * * * *", body = "{}", attempt_deadline = "300s" }
    dms   = { schedule = "* * * * *", body = "{\"for_s\": 55}", attempt_deadline = "120s" }
  }

  # Defaults per function, each overridable through var.function_settings. Service functions load the order
  # service (no ccxt): 512Mi. The adapter loads ccxt and its markets: 1Gi. A concurrency above 1 needs a whole
  # CPU. sweep can take a while on a big book of open orders. dms runs 55 s of every minute (timeout 120 s),
  # mostly sleeping between one-second checks, and is billed for all of it: a third of a CPU keeps that the
  # smallest part of the idle cost it can be (CPU below 1 requires concurrency 1).
  function_defaults = {
    api        = { memory = "512Mi", cpu = "1", timeout_seconds = 60, concurrency = 16, min_instances = 0, max_instances = 20 }
    signals    = { memory = "512Mi", cpu = "1", timeout_seconds = 60, concurrency = 8, min_instances = 0, max_instances = 20 }
    submit     = { memory = "512Mi", cpu = "1", timeout_seconds = 60, concurrency = 8, min_instances = 0, max_instances = 20 }
    sync       = { memory = "512Mi", cpu = "1", timeout_seconds = 60, concurrency = 8, min_instances = 0, max_instances = 20 }
    slices     = { memory = "512Mi", cpu = "1", timeout_seconds = 60, concurrency = 8, min_instances = 0, max_instances = 10 }
    sweep      = { memory = "512Mi", cpu = "1", timeout_seconds = 300, concurrency = 1, min_instances = 0, max_instances = 1 }
    heartbeats = { memory = "512Mi", cpu = "1", timeout_seconds = 60, concurrency = 8, min_instances = 0, max_instances = 10 }
    dms        = { memory = "512Mi", cpu = "0.333", timeout_seconds = 120, concurrency = 1, min_instances = 0, max_instances = 3 }
    tca        = { memory = "512Mi", cpu = "1", timeout_seconds = 60, concurrency = 8, min_instances = 0, max_instances = 10 }
    markouts   = { memory = "512Mi", cpu = "1", timeout_seconds = 60, concurrency = 8, min_instances = 0, max_instances = 10 }
    adapter    = { memory = "1Gi", cpu = "1", timeout_seconds = 60, concurrency = 16, min_instances = 0, max_instances = 10 }
  }
  function_config = {
    for fn, d in local.function_defaults : fn => {
      memory          = coalesce(try(var.function_settings[fn].memory, null), d.memory)
      cpu             = coalesce(try(var.function_settings[fn].cpu, null), d.cpu)
      timeout_seconds = coalesce(try(var.function_settings[fn].timeout_seconds, null), d.timeout_seconds)
      concurrency     = coalesce(try(var.function_settings[fn].concurrency, null), d.concurrency)
      min_instances   = coalesce(try(var.function_settings[fn].min_instances, null), d.min_instances)
      max_instances   = coalesce(try(var.function_settings[fn].max_instances, null), d.max_instances)
    }
  }

  # Who may reach each internal function from outside Google: nobody (the API, ALLOW_ALL, is in functions.tf).
  # They are called by Cloud Tasks, Cloud Scheduler or Pub/Sub push, which count as internal traffic; all of
  # them require an identity token with roles/run.invoker besides.
  ingress = {
    signals    = "ALLOW_INTERNAL_ONLY"
    submit     = "ALLOW_INTERNAL_ONLY"
    sync       = "ALLOW_INTERNAL_ONLY"
    slices     = "ALLOW_INTERNAL_ONLY"
    sweep      = "ALLOW_INTERNAL_ONLY"
    heartbeats = "ALLOW_INTERNAL_ONLY"
    dms        = "ALLOW_INTERNAL_ONLY"
    tca        = "ALLOW_INTERNAL_ONLY"
    markouts   = "ALLOW_INTERNAL_ONLY"
  }

  # Function URLs. A function's own URL cannot be read from its resource while that resource is being defined
  # (submit reschedules itself; submit and sync call each other), so the service functions get Cloud Run's
  # deterministic URL, https://SERVICE-PROJECT_NUMBER.REGION.run.app (a gen2 function's service is named after
  # it). Cloud Tasks uses the same URL as the OIDC audience. Triggers that can, use the resource's own uri.
  function_urls = {
    for fn in local.service_functions : fn => "https://${var.name}-${fn}-${data.google_project.this.number}.${var.region}.run.app"
  }

  # Plain environment of every service function: the Settings of shared/infra/config.py that have no safe
  # default in the cloud, and the tunables exposed as variables. Emulator hosts are never set.
  service_env = {
    GOOGLE_CLOUD_PROJECT  = var.project_id
    SIGNALS_TOPIC         = var.topics["signals_topic"]
    ORDER_EVENTS_TOPIC    = var.topics["order_events_topic"]
    HEARTBEATS_TOPIC      = var.topics["heartbeats_topic"]
    TCA_RECORDS_TOPIC     = var.topics["tca_records_topic"]
    SUBMIT_QUEUE          = var.queues["submit_queue"].name
    SLICES_QUEUE          = var.queues["slices_queue"].name
    SYNC_QUEUE            = var.queues["sync_queue"].name
    RECONCILE_QUEUE       = var.queues["reconcile_queue"].name
    TCA_QUEUE             = var.queues["tca_queue"].name
    TASKS_LOCATION        = var.region
    SUBMIT_FUNCTION_URL   = local.function_urls["submit"]
    SYNC_FUNCTION_URL     = local.function_urls["sync"]
    SLICES_FUNCTION_URL   = local.function_urls["slices"]
    MARKOUTS_FUNCTION_URL = local.function_urls["markouts"]
    TASKS_SERVICE_ACCOUNT = google_service_account.tasks_invoker.email
    ADAPTER_ENDPOINTS     = join(",", [for venue, fn in google_cloudfunctions2_function.adapter : "${venue}=${fn.service_config[0].uri}"])
    ADAPTER_ID_TOKENS     = "true" # the adapters admit only authenticated callers (roles/run.invoker)
    MAX_RETRIES           = tostring(var.max_retries)
    EXECUTION_TIMEOUT     = tostring(var.execution_timeout_s)
    LOG_LEVEL             = var.log_level
    API_RATE_LIMIT        = tostring(var.api_rate_limit)
    DMS_VENUE_TIMEOUT_MS  = tostring(var.dms_venue_timeout_ms)
    METRIC_STRATEGIES     = join(",", var.metric_strategies)
    SIGNAL_STRATEGIES     = join(",", [for topic, ids in var.signal_strategies : "${topic}=${join("|", ids)}"])
    REDIS_CA_FILE         = "${local.redis_ca_dir}/${local.redis_ca_file}"
  }

  # Secret environment of each service function (variable => secret id): REDIS_URL carries the AUTH string.
  # The API keys are not an environment variable: they are mounted on the API as a file (api_keys_dir), which
  # Cloud Run re-reads from Secret Manager, so keys rotate without a redeploy.
  service_secret_env = {
    api        = { REDIS_URL = google_secret_manager_secret.redis_url.secret_id }
    signals    = { REDIS_URL = google_secret_manager_secret.redis_url.secret_id }
    submit     = { REDIS_URL = google_secret_manager_secret.redis_url.secret_id }
    sync       = { REDIS_URL = google_secret_manager_secret.redis_url.secret_id }
    slices     = { REDIS_URL = google_secret_manager_secret.redis_url.secret_id }
    sweep      = { REDIS_URL = google_secret_manager_secret.redis_url.secret_id }
    heartbeats = { REDIS_URL = google_secret_manager_secret.redis_url.secret_id }
    dms        = { REDIS_URL = google_secret_manager_secret.redis_url.secret_id }
    tca        = { REDIS_URL = google_secret_manager_secret.redis_url.secret_id }
    markouts   = { REDIS_URL = google_secret_manager_secret.redis_url.secret_id }
  }

  # A venue's credentials (var.venues[*].credentials) and the AdapterSettings variable each is mounted as.
  venue_credential_env = {
    api_key      = "VENUE_API_KEY"
    api_secret   = "VENUE_API_SECRET"   # checkov:skip=CKV_SECRET_6:The name of an environment variable (AdapterSettings), not a secret value.
    api_password = "VENUE_API_PASSWORD" # checkov:skip=CKV_SECRET_6:The name of an environment variable (AdapterSettings), not a secret value.
  }
  venue_credentials = merge([
    for venue, v in var.venues : { for c in v.credentials : "${venue}-${replace(c, "_", "-")}" => { venue = venue, credential = c } }
  ]...)

  # Pub/Sub's dead-letter policy takes 5..100 delivery attempts: Settings.pubsub_max_delivery_attempts.
  max_delivery_attempts = min(100, max(5, var.max_retries))

  # Memorystore's server CA, mounted from Secret Manager into every function that talks to Redis; REDIS_CA_FILE
  # names it (shared/infra/redis_client.py verifies the server against it).
  redis_ca_dir  = "/etc/secrets/redis-ca"
  redis_ca_file = "ca.pem"

  # Secret files a service function mounts beside the Redis CA: the API's key file, on the API alone.
  service_key_volumes = { for fn in local.service_functions : fn => fn == "api" ? [google_secret_manager_secret.api_keys.secret_id] : [] }

  # The API key file, mounted on the API function only: Settings.api_keys_file's default is this path.
  api_keys_dir  = "/etc/secrets/api-keys"
  api_keys_file = "keys.json"
}

resource "google_project_service" "enabled" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudtasks.googleapis.com",
    "compute.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "redis.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
    "vpcaccess.googleapis.com",
  ])
  project = var.project_id
  service = each.value
  # Destroying this deployment must not switch off APIs other things in the project may use.
  disable_on_destroy = false
}

# The source archive (scripts/build_source.sh), named by its hash: a changed tree uploads a new object and
# every function redeploys; an unchanged one does not.
resource "google_storage_bucket" "source" {
  # checkov:skip=CKV_GCP_62:Access logs of a bucket that holds only the public source code add cost and no insight; Cloud Audit Logs record admin access.
  name                        = "${var.project_id}-${var.name}-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age        = 30
      with_state = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_storage_bucket_object" "source" {
  name   = "source-${filemd5(var.source_archive)}.zip"
  bucket = google_storage_bucket.source.name
  source = var.source_archive
}

# A private network for Memorystore, reached from the functions through a Serverless VPC Access connector.
# The service functions send only traffic to private ranges through it. The adapters send all their traffic
# through it (functions.tf), and leave the network through Cloud NAT from one reserved address
# (google_compute_address.venue_egress, output venue_egress_ip): the address to allow-list at each venue.
resource "google_compute_network" "this" {
  name                    = "${var.name}-vpc"
  auto_create_subnetworks = false

  depends_on = [google_project_service.enabled]
}

# Nothing in this network accepts connections from outside it: deny all ingress explicitly (lowest priority;
# the connector's own rules, which Google creates, stay in force).
resource "google_compute_firewall" "deny_ingress" {
  name      = "${var.name}-deny-ingress"
  network   = google_compute_network.this.name
  direction = "INGRESS"
  priority  = 65534

  deny {
    protocol = "all"
  }
  source_ranges = ["0.0.0.0/0"]

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# The connector's own subnet (Cloud NAT translates a subnet's ranges: a connector given only an ip_cidr_range
# has none to name).
resource "google_compute_subnetwork" "connector" {
  name                     = "${var.name}-conn"
  region                   = var.region
  network                  = google_compute_network.this.id
  ip_cidr_range            = var.connector_cidr
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_10_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_vpc_access_connector" "this" {
  name          = "${var.name}-conn"
  region        = var.region
  machine_type  = "e2-micro"
  min_instances = 2
  max_instances = 3

  subnet {
    name = google_compute_subnetwork.connector.name
  }
}

# The adapters' static egress: every request an adapter sends to a venue leaves from this one address, so venue
# API keys can be restricted to it. Reserved (kept across NAT changes); destroy releases it.
resource "google_compute_address" "venue_egress" {
  name         = "${var.name}-venue-egress"
  region       = var.region
  address_type = "EXTERNAL"
  network_tier = "PREMIUM"

  depends_on = [google_project_service.enabled]
}

resource "google_compute_router" "this" {
  name    = "${var.name}-router"
  region  = var.region
  network = google_compute_network.this.id
}

resource "google_compute_router_nat" "venue_egress" {
  name                               = "${var.name}-nat"
  router                             = google_compute_router.this.name
  region                             = var.region
  nat_ip_allocate_option             = "MANUAL_ONLY"
  nat_ips                            = [google_compute_address.venue_egress.self_link]
  source_subnetwork_ip_ranges_to_nat = "LIST_OF_SUBNETWORKS"
  # Many concurrent venue connections from few connector instances: ports per instance, allocated as needed.
  enable_dynamic_port_allocation = true
  min_ports_per_vm               = 256
  max_ports_per_vm               = 8192

  subnetwork {
    name                    = google_compute_subnetwork.connector.id
    source_ip_ranges_to_nat = ["ALL_IP_RANGES"]
  }

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}
