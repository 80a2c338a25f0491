# Inputs. Names of topics and queues default to the service's own defaults (shared/infra/config.py, Settings),
# keyed by the Settings attribute that reads them, so the tests can check one against the other. Everything else
# is named from var.name.

variable "project_id" {
  type        = string
  description = "The Google Cloud project to deploy into (must exist, with billing enabled)."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id: a Google Cloud project id, 6-30 lowercase letters, digits or hyphens."
  }
}

variable "region" {
  type        = string
  description = "Region of the functions, queues, Redis, the VPC connector and the scheduler jobs."
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region: a Google Cloud region such as us-central1 or europe-west1."
  }
}

variable "name" {
  type        = string
  description = "Prefix of every resource this configuration names itself (functions, service accounts, Redis, network, bucket, secrets). Short, because service account ids are at most 30 characters."
  default     = "exec"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,11}$", var.name))
    error_message = "name: 2-12 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "source_archive" {
  type        = string
  description = "Path of the functions' source archive built by scripts/build_source.sh (relative to terraform/ or absolute). Its hash names the uploaded object, so a changed archive redeploys every function."
  default     = "../build/source.zip"

  validation {
    condition     = endswith(var.source_archive, ".zip")
    error_message = "source_archive: the .zip that scripts/build_source.sh prints."
  }
}

variable "firestore_location" {
  type        = string
  description = "Location of the Firestore database: a multi-region (nam5, eur3) or a region. Null: var.region, so the order store sits beside the functions (every transaction is on the order path). Cannot change after creation: a database made with the old default keeps it only with firestore_location = \"nam5\"."
  default     = null

  validation {
    condition     = var.firestore_location == null || can(regex("^[a-z0-9-]+$", coalesce(var.firestore_location, "x")))
    error_message = "firestore_location: a Firestore location id such as nam5, eur3 or us-central1."
  }
}

variable "topics" {
  type        = map(string)
  description = "Pub/Sub topic ids, keyed by the Settings attribute that reads them (SIGNALS_TOPIC, ORDER_EVENTS_TOPIC, HEARTBEATS_TOPIC, TCA_RECORDS_TOPIC)."
  default = {
    signals_topic      = "execution-signals"
    order_events_topic = "order-events"
    heartbeats_topic   = "execution-heartbeats"
    tca_records_topic  = "tca-records"
  }

  validation {
    condition     = toset(keys(var.topics)) == toset(["signals_topic", "order_events_topic", "heartbeats_topic", "tca_records_topic"])
    error_message = "topics: exactly the keys signals_topic, order_events_topic, heartbeats_topic and tca_records_topic."
  }
  validation {
    condition     = alltrue([for t in values(var.topics) : can(regex("^[A-Za-z][A-Za-z0-9._~%+-]{2,200}$", t))])
    error_message = "topics: each a Pub/Sub topic id (a letter, then 2-200 letters, digits or ._~%+-)."
  }
}

variable "queues" {
  type = map(object({
    name                      = string
    max_dispatches_per_second = optional(number, 100)
    max_concurrent_dispatches = optional(number, 100)
    max_attempts              = optional(number, 20)
    min_backoff               = optional(string, "1s")
    max_backoff               = optional(string, "60s")
  }))
  description = "Cloud Tasks queues, keyed by the Settings attribute that reads them (SUBMIT_QUEUE, SLICES_QUEUE, SYNC_QUEUE, RECONCILE_QUEUE, TCA_QUEUE). The service schedules its own retries with backoff as new named tasks; the queue's retry only covers a handler that crashed (answered 5xx), so a bounded number of attempts with backoff. max_dispatches_per_second caps the calls to the venues (submit) and the polling (sync)."
  default = {
    submit_queue = { name = "order-submit", max_dispatches_per_second = 50, max_concurrent_dispatches = 50 }
    slices_queue = { name = "algo-slices", max_dispatches_per_second = 50, max_concurrent_dispatches = 50 }
    sync_queue   = { name = "order-sync", max_dispatches_per_second = 100, max_concurrent_dispatches = 100 }
    # The sweep's fan-out (one task per venue and shard each minute, to the sync function): few, long tasks.
    reconcile_queue = { name = "order-reconcile", max_dispatches_per_second = 20, max_concurrent_dispatches = 20 }
    # Markout samples: one task per venue, symbol and second with fills due (one book read serves them all).
    tca_queue = { name = "tca-markouts", max_dispatches_per_second = 50, max_concurrent_dispatches = 50 }
  }

  validation {
    condition     = toset(keys(var.queues)) == toset(["submit_queue", "slices_queue", "sync_queue", "reconcile_queue", "tca_queue"])
    error_message = "queues: exactly the keys submit_queue, slices_queue, sync_queue, reconcile_queue and tca_queue."
  }
  validation {
    condition     = alltrue([for q in values(var.queues) : can(regex("^[A-Za-z][A-Za-z0-9-]{2,99}$", q.name))])
    error_message = "queues: each name a Cloud Tasks queue id (a letter, then 2-99 letters, digits or hyphens)."
  }
  validation {
    condition = alltrue([for q in values(var.queues) : q.max_dispatches_per_second > 0 && q.max_dispatches_per_second <= 500
    && q.max_concurrent_dispatches >= 1 && q.max_concurrent_dispatches <= 5000 && q.max_attempts >= 1 && q.max_attempts <= 100])
    error_message = "queues: max_dispatches_per_second in (0, 500], max_concurrent_dispatches 1-5000, max_attempts 1-100."
  }
}

variable "venues" {
  type = map(object({
    exchange_id = string
    sandbox     = optional(bool, false)
    timeout_ms  = optional(number, 10000)
    # VENUE_REQUEST_BUDGET: ccxt cost units per second for all the venue's adapter instances together (null:
    # ccxt's published rate for the venue; 0: no shared budget).
    request_budget = optional(number)
    # Which credentials the venue needs; each becomes a Secret Manager secret mounted as VENUE_API_<NAME>.
    credentials = optional(list(string), ["api_key", "api_secret"])
    # Cloud Scheduler calls the adapter's POST /watchdog every minute (the venue's cancel-all-after where ccxt
    # has none natively and no instance stays warm).
    watchdog_job = optional(bool, true)
  }))
  description = "Venues, by name (the name the service and the API use, e.g. binance). Each gets its own adapter function (entry point adapter) with VENUE_NAME, VENUE_EXCHANGE_ID (a ccxt exchange id), VENUE_SANDBOX, VENUE_TIMEOUT_MS and its credentials from Secret Manager; the service functions reach them through ADAPTER_ENDPOINTS."
  default = {
    binance = { exchange_id = "binance", sandbox = true }
  }

  validation {
    condition     = length(var.venues) > 0 && alltrue([for k in keys(var.venues) : can(regex("^[a-z][a-z0-9]{0,8}$", k))])
    error_message = "venues: at least one; each name 1-9 lowercase letters or digits, starting with a letter (it is part of a service account id)."
  }
  validation {
    condition     = alltrue([for v in values(var.venues) : can(regex("^[a-z][a-z0-9_]{0,31}$", v.exchange_id))])
    error_message = "venues: exchange_id must be a ccxt exchange id (lowercase letters, digits, underscores)."
  }
  validation {
    condition     = alltrue([for v in values(var.venues) : alltrue([for c in v.credentials : contains(["api_key", "api_secret", "api_password"], c)])])
    error_message = "venues: credentials may list api_key, api_secret and api_password only."
  }
  validation {
    condition     = alltrue([for v in values(var.venues) : v.timeout_ms >= 100 && v.timeout_ms <= 120000])
    error_message = "venues: timeout_ms from 100 to 120000."
  }
  validation {
    condition     = alltrue([for v in values(var.venues) : v.request_budget == null ? true : v.request_budget >= 0 && v.request_budget <= 100000])
    error_message = "venues: request_budget from 0 to 100000 (ccxt cost units per second), or unset."
  }
}

variable "function_settings" {
  type = map(object({
    memory          = optional(string)
    cpu             = optional(string)
    timeout_seconds = optional(number)
    concurrency     = optional(number)
    min_instances   = optional(number)
    max_instances   = optional(number)
  }))
  description = "Per-function overrides of memory (e.g. 512Mi), cpu, timeout_seconds, concurrency (requests per instance), min_instances and max_instances, keyed by entry point (api, signals, submit, sync, slices, sweep, heartbeats, dms, tca, markouts, adapter; adapter applies to every venue). Unset fields keep the defaults in local.function_defaults (main.tf). min_instances above 0 removes cold starts and costs money at idle."
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.function_settings) : contains(["api", "signals", "submit", "sync", "slices", "sweep", "heartbeats", "dms", "tca", "markouts", "adapter"], k)])
    error_message = "function_settings: keys must be entry points: api, signals, submit, sync, slices, sweep, heartbeats, dms, tca, markouts, adapter."
  }
  validation {
    condition = alltrue([for s in values(var.function_settings) : (s.timeout_seconds == null ? true : s.timeout_seconds >= 1 && s.timeout_seconds <= 3600)
    && (s.concurrency == null ? true : s.concurrency >= 1 && s.concurrency <= 1000) && (s.min_instances == null ? true : s.min_instances >= 0)])
    error_message = "function_settings: timeout_seconds 1-3600, concurrency 1-1000, min_instances >= 0."
  }
}

variable "max_retries" {
  type        = number
  description = "MAX_RETRIES: retries of retryable work (submission); Pub/Sub's dead-letter policy uses it clamped to 5..100 delivery attempts, as Settings.pubsub_max_delivery_attempts does."
  default     = 5

  validation {
    condition     = var.max_retries >= 0 && var.max_retries <= 100 && floor(var.max_retries) == var.max_retries
    error_message = "max_retries: an integer from 0 to 100."
  }
}

variable "execution_timeout_s" {
  type        = number
  description = "EXECUTION_TIMEOUT: seconds an order may work before it is cancelled (orders without an expiry of their own)."
  default     = 300

  validation {
    condition     = var.execution_timeout_s > 0
    error_message = "execution_timeout_s: a number of seconds greater than 0."
  }
}

variable "log_level" {
  type        = string
  description = "LOG_LEVEL of every function."
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], var.log_level)
    error_message = "log_level: one of DEBUG, INFO, WARNING, ERROR, CRITICAL."
  }
}

variable "api_rate_limit" {
  type        = number
  description = "API_RATE_LIMIT: requests per second per API key, shared by every instance."
  default     = 100

  validation {
    condition     = var.api_rate_limit >= 1 && var.api_rate_limit <= 100000
    error_message = "api_rate_limit: 1 to 100000."
  }
}

variable "dms_venue_timeout_ms" {
  type        = number
  description = "DMS_VENUE_TIMEOUT_MS: the venues' own cancel-all-after kept armed while heartbeats flow."
  default     = 60000

  validation {
    condition     = var.dms_venue_timeout_ms >= 5000 && var.dms_venue_timeout_ms <= 3600000
    error_message = "dms_venue_timeout_ms: 5000 to 3600000."
  }
}

variable "metric_strategies" {
  type        = list(string)
  description = "METRIC_STRATEGIES: strategy ids that get their own metric series; every other strategy is counted as \"other\" (metric labels stay bounded)."
  default     = []

  validation {
    condition     = length(var.metric_strategies) <= 50
    error_message = "metric_strategies: at most 50 (each multiplies every strategy-labelled series)."
  }
}

variable "signal_strategies" {
  type        = map(list(string))
  description = "SIGNAL_STRATEGIES: signal topic id => the strategy ids its publishers may trade ([\"*\"]: all). A topic is the publisher's identity (only the principals its IAM names may publish on it). Empty: the signals topic takes every strategy."
  default     = {}
}

variable "api_invokers" {
  type        = list(string)
  description = "Principals allowed to call the API function (roles/run.invoker), e.g. [\"serviceAccount:strategy@p.iam.gserviceaccount.com\", \"group:traders@example.com\"]. The API requires an identity token (Authorization: Bearer) as well as an X-API-Key; nobody else can reach it."
  default     = []

  validation {
    condition     = alltrue([for m in var.api_invokers : can(regex("^(user|serviceAccount|group|domain|principal|principalSet):", m))])
    error_message = "api_invokers: IAM members such as serviceAccount:x@p.iam.gserviceaccount.com or group:g@example.com (never allUsers)."
  }
}

variable "signal_publishers" {
  type        = list(string)
  description = "Principals allowed to publish to the signals and heartbeats topics (roles/pubsub.publisher on those two topics only), e.g. the strategies' service accounts."
  default     = []

  validation {
    condition     = alltrue([for m in var.signal_publishers : can(regex("^(user|serviceAccount|group|domain|principal|principalSet):", m))])
    error_message = "signal_publishers: IAM members such as serviceAccount:x@p.iam.gserviceaccount.com (never allUsers)."
  }
}

variable "event_subscribers" {
  type        = list(string)
  description = "Principals allowed to attach subscriptions to the order-events topic (roles/pubsub.subscriber on it), e.g. the strategies' or a risk system's service accounts."
  default     = []

  validation {
    condition     = alltrue([for m in var.event_subscribers : can(regex("^(user|serviceAccount|group|domain|principal|principalSet):", m))])
    error_message = "event_subscribers: IAM members such as serviceAccount:x@p.iam.gserviceaccount.com (never allUsers)."
  }
}

variable "redis_memory_gb" {
  type        = number
  description = "Memorystore for Redis capacity in GB (basic tier: the dominant fixed cost at idle)."
  default     = 1

  validation {
    condition     = var.redis_memory_gb >= 1 && var.redis_memory_gb <= 300
    error_message = "redis_memory_gb: 1 to 300."
  }
}

variable "redis_tier" {
  type        = string
  description = "Memorystore tier: BASIC (one node, no replica: the service keeps working without Redis, slower) or STANDARD_HA (a replica, about twice the cost)."
  default     = "BASIC"

  validation {
    condition     = contains(["BASIC", "STANDARD_HA"], var.redis_tier)
    error_message = "redis_tier: BASIC or STANDARD_HA."
  }
}

variable "connector_cidr" {
  type        = string
  description = "A free /28 range in the service's VPC for the Serverless VPC Access connector."
  default     = "10.8.0.0/28"

  validation {
    condition     = can(cidrhost(var.connector_cidr, 0)) && endswith(var.connector_cidr, "/28")
    error_message = "connector_cidr: an IPv4 /28 range such as 10.8.0.0/28."
  }
}

variable "alert_notification_channels" {
  type        = list(string)
  description = "Monitoring notification channel ids (projects/P/notificationChannels/N) the alert policies notify. Empty: the alerts still open incidents in the console."
  default     = []

  validation {
    condition     = alltrue([for c in var.alert_notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", c))])
    error_message = "alert_notification_channels: ids of the form projects/P/notificationChannels/N."
  }
}

# ---- execution-quality alerts (terraform/monitoring.tf; their Prometheus twins: monitoring/prometheus/alerts.yml)
variable "alert_thresholds" {
  type = object({
    # Slippage degraded: the last hour's mean arrival cost on a venue may exceed its own baseline by this many bps.
    slippage_margin_bps = optional(number, 5)
    # The baseline the slippage and fill ratio alerts compare the last hour with (a PromQL duration).
    baseline_window = optional(string, "7d")
    # The fewest ended orders (fills, for markouts) in the last hour for the slippage, fill ratio and markout alerts.
    min_orders = optional(number, 20)
    # Reject rate high: the share of a venue's orders (15 minutes) that may end rejected.
    reject_rate = optional(number, 0.05)
    # Venue ack latency high: the 95th percentile a venue's acknowledgement may take, in ms.
    ack_latency_p95_ms = optional(number, 1000)
    # Fill ratio collapse: the last hour's mean fill ratio below this fraction of its baseline mean.
    fill_ratio_collapse_factor = optional(number, 0.5)
    # Stale market data: stale or failed reads a venue may have in 10 minutes (the logs count only those).
    market_data_unavailable_per_10m = optional(number, 10)
    # Adverse markout: the floor of a venue's mean 60 s markout over the last hour, in bps (negative: against us).
    markout_60s_bps = optional(number, -10)
  })
  description = "Thresholds of the execution-quality alert policies (monitoring.tf, local.execution_alerts), each field optional with the Prometheus rule's value as default: slippage_margin_bps (5), baseline_window (7d), min_orders (20), reject_rate (0.05), ack_latency_p95_ms (1000), fill_ratio_collapse_factor (0.5), market_data_unavailable_per_10m (10; Prometheus alerts on a 10% share), markout_60s_bps (-10)."
  default     = {}

  validation {
    condition     = var.alert_thresholds.slippage_margin_bps > 0 && var.alert_thresholds.slippage_margin_bps <= 100
    error_message = "alert_thresholds.slippage_margin_bps: above 0, at most 100."
  }
  validation {
    condition     = can(regex("^[1-9][0-9]*[hdw]$", var.alert_thresholds.baseline_window))
    error_message = "alert_thresholds.baseline_window: a PromQL duration in hours, days or weeks, such as 7d."
  }
  validation {
    condition     = var.alert_thresholds.min_orders >= 1 && floor(var.alert_thresholds.min_orders) == var.alert_thresholds.min_orders
    error_message = "alert_thresholds.min_orders: a whole number, at least 1."
  }
  validation {
    condition     = var.alert_thresholds.reject_rate > 0 && var.alert_thresholds.reject_rate < 1
    error_message = "alert_thresholds.reject_rate: a share between 0 and 1, such as 0.05."
  }
  validation {
    condition     = var.alert_thresholds.ack_latency_p95_ms >= 10 && var.alert_thresholds.ack_latency_p95_ms <= 30000
    error_message = "alert_thresholds.ack_latency_p95_ms: 10 to 30000 (the log-based metric's buckets end at 30 s)."
  }
  validation {
    condition     = var.alert_thresholds.fill_ratio_collapse_factor > 0 && var.alert_thresholds.fill_ratio_collapse_factor < 1
    error_message = "alert_thresholds.fill_ratio_collapse_factor: between 0 and 1, such as 0.5."
  }
  validation {
    condition     = var.alert_thresholds.market_data_unavailable_per_10m >= 0 && floor(var.alert_thresholds.market_data_unavailable_per_10m) == var.alert_thresholds.market_data_unavailable_per_10m
    error_message = "alert_thresholds.market_data_unavailable_per_10m: a whole number, at least 0."
  }
  validation {
    condition     = var.alert_thresholds.markout_60s_bps < 0 && var.alert_thresholds.markout_60s_bps >= -100
    error_message = "alert_thresholds.markout_60s_bps: below 0, at least -100."
  }
}

# ---- BigQuery (terraform/bigquery.tf)
variable "bigquery_dataset_id" {
  type        = string
  description = "The BigQuery dataset the tca-records and order-events topics stream into (tables tca_records, order_events; view tca_aggregate)."
  default     = "execution"

  validation {
    condition     = can(regex("^[A-Za-z_][A-Za-z0-9_]{0,1023}$", var.bigquery_dataset_id))
    error_message = "bigquery_dataset_id: letters, digits and underscores, not starting with a digit."
  }
}

variable "bigquery_location" {
  type        = string
  description = "Location of the BigQuery dataset (a region such as us-central1, or US / EU). Null: var.region."
  default     = null

  validation {
    condition     = var.bigquery_location == null || can(regex("^(US|EU|[a-z]+-[a-z]+[0-9]+)$", coalesce(var.bigquery_location, "US")))
    error_message = "bigquery_location: US, EU or a region such as us-central1."
  }
}

variable "bigquery_deletion_protection" {
  type        = bool
  description = "Refuse to destroy the BigQuery tables (they hold the TCA history). Set false only to tear a test deployment down."
  default     = true
}
