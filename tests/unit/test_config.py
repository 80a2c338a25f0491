"""Configuration parsing and its error messages."""

import pytest

from shared.infra.config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ("GOOGLE_CLOUD_PROJECT", "PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "CLOUD_TASKS_EMULATOR_HOST",
                "REDIS_URL", "ADAPTER_ENDPOINTS", "MAX_RETRIES", "EXECUTION_TIMEOUT", "LOG_LEVEL", "API_KEYS",
                "SIGNALS_TOPIC", "ORDER_EVENTS_TOPIC"):
        monkeypatch.delenv(var, raising=False)


def test_defaults_are_a_working_local_configuration():
    s = load_settings()
    assert s.google_cloud_project == "execution-local"
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.adapter_endpoints == {}
    assert s.signals_topic == "execution-signals" and s.order_events_topic == "order-events"
    assert s.log_level == "INFO"


def test_environment_is_read(monkeypatch):
    monkeypatch.setenv("ADAPTER_ENDPOINTS", "binance=http://127.0.0.1:9101/, kraken=http://127.0.0.1:9102")
    monkeypatch.setenv("MAX_RETRIES", "7")
    monkeypatch.setenv("EXECUTION_TIMEOUT", "12.5")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:8681")
    s = load_settings()
    assert s.adapter_endpoints == {"binance": "http://127.0.0.1:9101", "kraken": "http://127.0.0.1:9102"}
    assert s.max_retries == 7 and s.execution_timeout == 12.5 and s.log_level == "DEBUG"
    assert s.pubsub_emulator_host == "127.0.0.1:8681"


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("MAX_RETRIES", "abc", "an integer from 0 to 100"),
        ("MAX_RETRIES", "101", "an integer from 0 to 100"),
        ("EXECUTION_TIMEOUT", "0", "greater than 0"),
        ("LOG_LEVEL", "LOUD", "one of DEBUG"),
        ("REDIS_URL", "localhost:6379", "redis://"),
        ("ADAPTER_ENDPOINTS", "binance", "name=url"),
        ("ADAPTER_ENDPOINTS", "binance=ftp:/x", "name=url"),
        ("ADAPTER_ENDPOINTS", "a=http://x:1,a=http://y:2", "listed twice"),
        ("GOOGLE_CLOUD_PROJECT", "Bad_Project", "project id"),
        ("PUBSUB_EMULATOR_HOST", "localhost", "host:port"),
        ("SIGNALS_TOPIC", "a b", "resource id"),
    ],
)
def test_bad_values_name_the_variable_and_the_expected_form(monkeypatch, var, value, expected):
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert var in str(err.value)
    assert expected in str(err.value)


def test_secrets_are_never_echoed(monkeypatch):
    monkeypatch.setenv("API_KEYS", "short-secret")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "API_KEYS" in str(err.value) and "short-secret" not in str(err.value)


def test_paths_and_dead_letter_policy_are_derived_in_one_place():
    s = load_settings(google_cloud_project="proj-123", max_retries=2)
    assert s.topic_path("t") == "projects/proj-123/topics/t"
    assert s.queue_path("q") == "projects/proj-123/locations/us-central1/queues/q"
    assert s.dead_letter_topic("execution-signals") == "execution-signals-dead-letter"
    assert s.pubsub_max_delivery_attempts == 5  # Pub/Sub accepts 5..100
    assert load_settings(max_retries=100).pubsub_max_delivery_attempts == 100


def test_a_memorystore_url_with_auth_and_tls_gives_a_tls_client_trusting_its_ca(monkeypatch, tmp_path):
    # What Terraform sets: REDIS_URL (AUTH string, TLS port 6378) and REDIS_CA_FILE, the CA Secret Manager mounts.
    import redis

    from shared.infra import redis_client

    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("REDIS_URL", "rediss://:auth-string@10.0.0.3:6378/0")
    monkeypatch.setenv("REDIS_CA_FILE", str(ca))
    cfg = load_settings()
    client = redis_client.connect(cfg.redis_url, cfg.redis_ca_file)  # builds, connects only when used
    kwargs = client.connection_pool.connection_kwargs
    assert client.connection_pool.connection_class is redis.SSLConnection
    assert kwargs["ssl_ca_certs"] == str(ca) and kwargs["password"] == "auth-string"
    assert kwargs["ssl_cert_reqs"] == "required" and kwargs["ssl_check_hostname"] is False
    assert kwargs["port"] == 6378


