"""Service configuration: every environment variable the service reads, validated once per process.

``settings()`` parses the environment on first use and caches the result. A bad value raises
``ConfigError`` naming the variable and the expected form, so a function fails at start-up rather than
on its first request.
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal
from typing import Annotated, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BeforeValidator,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.app import fields

_PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_HOST_PORT = re.compile(r"^[A-Za-z0-9.\-]+:\d{1,5}$")
_RESOURCE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9._~%+-]{2,254}$")
_VENUE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_SECRET = {"API_KEYS", "VENUE_API_KEY", "VENUE_API_SECRET", "VENUE_API_PASSWORD"}
_HTTP_URL = TypeAdapter(AnyHttpUrl)

# The expected form of each variable, quoted in error messages.
_EXPECTED = {
    "GOOGLE_CLOUD_PROJECT": "a Google Cloud project id (6-30 lowercase letters, digits or hyphens)",
    "PUBSUB_EMULATOR_HOST": "host:port",
    "FIRESTORE_EMULATOR_HOST": "host:port",
    "CLOUD_TASKS_EMULATOR_HOST": "host:port",
    "REDIS_URL": "redis://[:password@]host:port/db or rediss://...",
    "REDIS_CA_FILE": "the path of a readable PEM file (the Redis server's CA), with a rediss:// REDIS_URL",
    "ADAPTER_ENDPOINTS": "name=url[,name=url...], e.g. binance=http://127.0.0.1:9101",
    "MAX_RETRIES": "an integer from 0 to 100",
    "EXECUTION_TIMEOUT": "a number of seconds greater than 0",
    "LOG_LEVEL": "one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
    "API_KEYS": "nothing: API_KEYS is no longer read; keys are hashed records in API_KEYS_FILE (README, Access)",
    "API_KEYS_FILE": "the path of the API key file (README, Access)",
    "API_KEYS_TTL_S": "seconds between re-reads of the API key file, 1 to 3600",
    "SIGNAL_STRATEGIES": "topic=strategy|strategy,topic=* (the strategies each signal topic's publishers may trade)",
    "API_RATE_LIMIT": "requests per second per API key, 1 to 100000",
    "DMS_VENUE_TIMEOUT_MS": "milliseconds, 5000 to 3600000",
    "DMS_LATCH": "true or false",
    "HEARTBEAT_MAX_AGE_MS": "milliseconds, 100 to 3600000",
    "SIGNAL_MAX_AGE_MS": "milliseconds, 100 to 86400000",
    "DEFAULT_COLLAR_BPS": "basis points, greater than 0 and at most 10000",
    "SUBMIT_FUNCTION_URL": "the submit function's http(s) URL",
    "SYNC_FUNCTION_URL": "the sync function's http(s) URL",
    "SLICES_FUNCTION_URL": "the slices function's http(s) URL",
    "VENUE_NAME": "a venue name: lowercase letters, digits, underscores (e.g. binance)",
    "VENUE_EXCHANGE_ID": "a ccxt exchange id (e.g. binance, kraken, okx)",
    "VENUE_API_URL": "an http(s) base URL",
    "VENUE_SANDBOX": "true or false",
    "VENUE_TIMEOUT_MS": "milliseconds, 100 to 120000",
    "VENUE_RATE_LIMIT_MS": "milliseconds between requests, 0 to 60000 (0 disables ccxt's throttle)",
    "VENUE_REQUEST_BUDGET": "ccxt cost units per second for all instances together, 0 to 100000 (0: no shared budget)",
}


T = TypeVar("T", bound=BaseSettings)


class ConfigError(RuntimeError):
    """The environment holds a value the service cannot run with."""


def _redis_url(v: str) -> str:
    if not re.match(r"^(redis|rediss|unix)://", v):
        raise ValueError("not a redis URL")
    return v


RedisUrl = Annotated[str, AfterValidator(_redis_url)]


def _ca_file(v: str | None) -> str | None:
    """A readable file, or None when empty (checked at start-up, not at the first Redis call)."""
    if not v:
        return None
    try:
        with open(v, "rb") as f:
            f.read(1)
    except OSError as exc:
        raise ValueError(f"cannot read {v}: {exc.strerror}") from None
    return v


CaFile = Annotated[str | None, AfterValidator(_ca_file)]


def _redis_tls(redis_url: str, ca_file: str | None) -> None:
    from shared.infra.redis_client import tls_options

    try:
        tls_options(redis_url, ca_file)
    except ValueError as exc:
        raise PydanticCustomError("redis_tls", str(exc), {"variable": "REDIS_CA_FILE"}) from None
LogLevel = Annotated[
    Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
    BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v),
]


def _optional_url(v: str | None) -> str | None:
    """An http(s) URL without a trailing slash, or None when empty."""
    if not v:
        return None
    try:
        _HTTP_URL.validate_python(v)
    except ValidationError:
        raise ValueError("not an http(s) URL") from None
    return v.rstrip("/")


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """All configuration, from environment variables of the same name in upper case."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    google_cloud_project: str = "execution-local"
    pubsub_emulator_host: str | None = None
    firestore_emulator_host: str | None = None
    cloud_tasks_emulator_host: str | None = None
    redis_url: RedisUrl = "redis://127.0.0.1:6379/0"
    # Memorystore's server CA (PEM): verified, the hostname not (shared/infra/redis_client.py says why).
    redis_ca_file: CaFile = None
    adapter_endpoints: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    max_retries: int = Field(default=5, ge=0, le=100)
    execution_timeout: float = Field(default=300.0, gt=0)
    log_level: LogLevel = "INFO"
    # API keys: hashed records (shared/domain/access.py) in a file re-read every api_keys_ttl_s; in the cloud the
    # Secret Manager secret mounted on the API function there (terraform/functions.tf). API_KEYS (plain keys) is
    # refused, so a deployment still setting it fails at start-up instead of refusing every caller.
    api_keys: SecretStr | None = None
    api_keys_file: str = "/etc/secrets/api-keys/keys.json"
    api_keys_ttl_s: float = Field(default=30.0, ge=1, le=3600)
    # Signal topic -> the strategies its publishers may trade ("*": all); a topic not listed takes none. Empty:
    # SIGNALS_TOPIC takes every strategy (its IAM, signal_publishers, is the boundary).
    signal_strategies: Annotated[dict[str, list[str]], NoDecode] = Field(default_factory=dict)
    api_rate_limit: int = Field(default=100, ge=1, le=100_000)  # requests per second per API key
    # Strategy ids that get their own metric series; every other strategy is counted as "other" (bounded labels).
    metric_strategies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The venues' own cancel-all-after, kept armed (refreshed every quarter of it) while heartbeats flow.
    dms_venue_timeout_ms: int = Field(default=60_000, ge=5_000, le=3_600_000)
    # A fired dead man's switch stays halted until an operator re-enables the strategy (false: a heartbeat sent
    # after the firing lifts it).
    dms_latch: bool = True
    # Heartbeats and signals older than these (by their send time: Pub/Sub's publish time) are ignored / rejected.
    heartbeat_max_age_ms: int = Field(default=10_000, ge=100, le=3_600_000)
    signal_max_age_ms: int = Field(default=5_000, ge=100, le=86_400_000)
    # Market orders (and algorithm children) go out as IOC limits this far from the mid unless they set their own.
    default_collar_bps: Decimal = Field(default=Decimal(50), gt=0, le=10_000)
    # The sweep fans out one reconcile task per venue and shard of the order ids (shared/domain/reconcile.py).
    reconcile_shards: int = Field(default=16, ge=1, le=4096)

    # Messaging and scheduling resources (names, not paths; paths are built from the project).
    signals_topic: str = "execution-signals"
    order_events_topic: str = "order-events"
    heartbeats_topic: str = "execution-heartbeats"
    tca_records_topic: str = "tca-records"  # each top-level order's TCA row (streamed to BigQuery by Terraform)
    tasks_location: str = "us-central1"
    submit_queue: str = "order-submit"
    slices_queue: str = "algo-slices"
    sync_queue: str = "order-sync"
    reconcile_queue: str = "order-reconcile"  # the sweep's fan-out; delivered to the sync function
    tca_queue: str = "tca-markouts"  # markout samples, one task per venue, symbol and second
    # Where Cloud Tasks delivers each queue's work, and the identity it calls with (OIDC; unset locally).
    submit_function_url: str | None = None
    sync_function_url: str | None = None
    slices_function_url: str | None = None
    markouts_function_url: str | None = None
    tasks_service_account: str | None = None
    # Deployed adapters accept only authenticated calls: send a Google ID token (audience = the adapter's URL).
    adapter_id_tokens: bool = False

    @model_validator(mode="after")
    def _tls(self) -> "Settings":
        _redis_tls(self.redis_url, self.redis_ca_file)
        return self

    @field_validator("google_cloud_project")
    @classmethod
    def _project(cls, v: str) -> str:
        if not _PROJECT_ID.match(v):
            raise ValueError("not a project id")
        return v

    @field_validator("pubsub_emulator_host", "firestore_emulator_host", "cloud_tasks_emulator_host")
    @classmethod
    def _host_port(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        if not _HOST_PORT.match(v):
            raise ValueError("not host:port")
        return v

    @field_validator("submit_function_url", "sync_function_url", "slices_function_url", "markouts_function_url")
    @classmethod
    def _function_url(cls, v: str | None) -> str | None:
        return _optional_url(v)

    @field_validator("adapter_endpoints", mode="before")
    @classmethod
    def _endpoints(cls, v: object) -> object:
        if not isinstance(v, str):
            return v
        endpoints: dict[str, str] = {}
        for item in _split_csv(v):
            name, sep, url = item.partition("=")
            name = name.strip()
            if not sep or not _VENUE_NAME.match(name) or not url.strip():
                raise ValueError(f"bad entry {item!r}")
            if name in endpoints:
                raise ValueError(f"venue {name!r} listed twice")
            try:
                _HTTP_URL.validate_python(url.strip())
            except ValidationError:
                raise ValueError(f"bad URL for venue {name!r}: {url.strip()!r}") from None
            endpoints[name] = url.strip().rstrip("/")
        return endpoints

    @field_validator("metric_strategies", mode="before")
    @classmethod
    def _strategies(cls, v: object) -> object:
        names = _split_csv(v)
        if isinstance(names, list) and len(names) > 50:
            raise ValueError("at most 50 strategies get their own series (each multiplies every labelled family)")
        bad = [n for n in names if not fields.is_strategy_id(n)] if isinstance(names, list) else []
        if bad:  # a label value: the strategy id rule of the edge
            raise ValueError(f"{bad[0]!r} is not a strategy id ({fields.ID_RULE})")
        return names

    @field_validator("api_keys", mode="before")
    @classmethod
    def _keys(cls, v: object) -> object:
        if v not in (None, ""):
            raise ValueError("API_KEYS is no longer read: put hashed key records in API_KEYS_FILE")
        return None

    @field_validator("signal_strategies", mode="before")
    @classmethod
    def _signal_strategies(cls, v: object) -> object:
        if not isinstance(v, str):
            return v
        allowed: dict[str, list[str]] = {}
        for item in _split_csv(v):
            topic, sep, names = item.partition("=")
            topic = topic.strip()
            strategies = [n.strip() for n in names.split("|") if n.strip()]
            if not sep or not _RESOURCE_ID.match(topic) or not strategies:
                raise ValueError(f"bad entry {item!r}")
            if topic in allowed:
                raise ValueError(f"topic {topic!r} listed twice")
            if "*" in strategies and strategies != ["*"]:
                raise ValueError(f"topic {topic!r}: '*' stands alone")
            allowed[topic] = strategies
        return allowed

    def signal_scope(self, topic: str | None) -> frozenset[str] | None:
        """The strategies a signal or heartbeat from `topic` may be for: None means every strategy; empty means
        none (a topic not configured, or unknown). Unconfigured, the signals and heartbeats topics take every
        strategy."""
        allowed = self.signal_strategies or {self.signals_topic: ["*"], self.heartbeats_topic: ["*"]}
        names = allowed.get(topic or "")
        if names is None:
            return frozenset()
        return None if names == ["*"] else frozenset(names)

    @field_validator(
        "signals_topic", "order_events_topic", "heartbeats_topic", "tca_records_topic", "submit_queue", "slices_queue",
        "sync_queue", "reconcile_queue", "tca_queue",
    )
    @classmethod
    def _resource(cls, v: str) -> str:
        if not _RESOURCE_ID.match(v):
            raise ValueError("not a valid resource id")
        return v

    # Derived names, so every caller builds them the same way.
    def topic_path(self, topic: str) -> str:
        return f"projects/{self.google_cloud_project}/topics/{topic}"

    def submit_queue_for(self, venue: str) -> str:
        """The submit queue of one venue: SUBMIT_QUEUE + "-" + venue (underscores as hyphens, which queue ids
        need), so a slow or rate-limited venue only delays its own submissions. Terraform (tasks.tf) and the
        local stack create one per venue by this same rule."""
        return f"{self.submit_queue}-{venue.replace('_', '-')}"

    def queue_path(self, queue: str) -> str:
        return f"projects/{self.google_cloud_project}/locations/{self.tasks_location}/queues/{queue}"

    @staticmethod
    def dead_letter_topic(topic: str) -> str:
        return f"{topic}-dead-letter"

    @property
    def pubsub_max_delivery_attempts(self) -> int:
        """Pub/Sub's dead-letter policy accepts 5..100 delivery attempts; MAX_RETRIES is clamped into it."""
        return min(100, max(5, self.max_retries))


class AdapterSettings(BaseSettings):
    """Configuration of one venue adapter deployment (functions/adapter.py). Credentials come from the
    environment; deployed, Secret Manager secrets are mounted as these variables."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    google_cloud_project: str = "execution-local"
    venue_name: str
    venue_exchange_id: str = "binance"
    venue_api_key: SecretStr | None = None
    venue_api_secret: SecretStr | None = None
    venue_api_password: SecretStr | None = None
    venue_sandbox: bool = False
    venue_api_url: str | None = None
    venue_timeout_ms: int = Field(default=10_000, ge=100, le=120_000)
    # ccxt's per-venue throttle: None keeps ccxt's published rate for the venue; 0 turns it off (simulators only).
    venue_rate_limit_ms: int | None = Field(default=None, ge=0, le=60_000)
    # The venue's request weight per second shared by every instance (ccxt cost units; shared/adapters/ccxt_venue.py).
    # None: ccxt's published rate for the venue (1000 / its rateLimit), or none when VENUE_RATE_LIMIT_MS is 0
    # (simulators); 0: no shared budget.
    venue_request_budget: Decimal | None = Field(default=None, ge=0, le=100_000)
    redis_url: RedisUrl = "redis://127.0.0.1:6379/0"
    redis_ca_file: CaFile = None
    log_level: LogLevel = "INFO"

    @model_validator(mode="after")
    def _tls(self) -> "AdapterSettings":
        _redis_tls(self.redis_url, self.redis_ca_file)
        return self

    @field_validator("venue_name", "venue_exchange_id")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _VENUE_NAME.match(v):
            raise ValueError("not a venue name")
        return v

    @field_validator("venue_api_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return _optional_url(v)

    @field_validator("venue_request_budget", mode="before")
    @classmethod
    def _budget(cls, v: object) -> object:
        return None if v == "" else v  # Terraform sets it empty for "the default"

    def request_budget_per_s(self, ccxt_rate_limit_ms: float) -> float | None:
        """The shared budget in ccxt cost units per second, or None for none (see venue_request_budget)."""
        if self.venue_request_budget is not None:
            return float(self.venue_request_budget) or None
        if self.venue_rate_limit_ms == 0:
            return None
        return 1000 / (self.venue_rate_limit_ms or ccxt_rate_limit_ms or 1000)


def _describe(error: ValidationError) -> str:
    lines = []
    for err in error.errors():
        # A model-level rule names its variable in ctx; its input is every value (secrets too): never shown.
        field = str(err["loc"][0]).upper() if err["loc"] else (err.get("ctx") or {}).get("variable", "?")
        expected = _EXPECTED.get(field, err["msg"])
        got = "<hidden>" if field in _SECRET or not err["loc"] else repr(err.get("input"))
        lines.append(f"{field}: expected {expected}; got {got} ({err['msg']})")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_settings(cls: type[T] = Settings, **overrides: object) -> T:  # type: ignore[assignment]
    """Read and validate the environment (overrides win). Raises ConfigError with a readable message."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


@functools.cache
def settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
