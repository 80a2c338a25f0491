"""Redis connections: the CA is verified and the hostname is not exactly when REDIS_CA_FILE names the CA; a CA
with a clear-text URL is refused at start-up; Redis failures are reported loudly but not in a flood."""

from __future__ import annotations

import json
import logging

import pytest
import redis

from shared.infra import redis_client
from shared.infra.config import AdapterSettings, ConfigError, load_settings
from shared.infra.redis_client import FailureReporter, tls_options


def test_a_ca_file_verifies_the_server_against_it_without_the_hostname():
    assert tls_options("rediss://:pw@10.0.0.3:6378/0", "/etc/secrets/redis-ca/ca.pem") == {
        "ssl_cert_reqs": "required", "ssl_ca_certs": "/etc/secrets/redis-ca/ca.pem", "ssl_check_hostname": False}


def test_tls_without_a_ca_file_uses_the_system_cas_and_checks_the_hostname():
    assert tls_options("rediss://redis.example.com:6380/0", None) == {
        "ssl_cert_reqs": "required", "ssl_check_hostname": True}


def test_plain_redis_has_no_tls_options():
    assert tls_options("redis://127.0.0.1:6379/0", None) == {}


def test_a_ca_file_with_a_clear_text_url_is_refused():
    with pytest.raises(ValueError, match="not rediss://"):
        tls_options("redis://10.0.0.3:6379/0", "/ca.pem")


def test_connect_passes_the_options_to_the_ssl_connection(tmp_path):
    client = redis_client.connect("rediss://:pw@10.0.0.3:6378/0", "/ca.pem", socket_timeout=0.5)
    kwargs = client.connection_pool.connection_kwargs
    assert client.connection_pool.connection_class is redis.SSLConnection
    assert (kwargs["ssl_ca_certs"], kwargs["ssl_check_hostname"], kwargs["ssl_cert_reqs"]) == ("/ca.pem", False, "required")
    assert kwargs["socket_timeout"] == 0.5


@pytest.mark.parametrize("model, extra", [(None, {}), (AdapterSettings, {"venue_name": "binance"})])
def test_settings_refuse_a_ca_file_with_a_clear_text_url_and_hide_the_auth_string(tmp_path, model, extra):
    ca = tmp_path / "ca.pem"
    ca.write_text("pem")
    args = (model,) if model else ()
    with pytest.raises(ConfigError) as err:
        load_settings(*args, redis_url="redis://:secret-auth@10.0.0.3:6379/0", redis_ca_file=str(ca), **extra)
    assert "REDIS_CA_FILE" in str(err.value) and "not rediss://" in str(err.value)
    assert "secret-auth" not in str(err.value)


def test_settings_refuse_an_unreadable_ca_file(tmp_path):
    with pytest.raises(ConfigError, match="REDIS_CA_FILE.*cannot read"):
        load_settings(redis_url="rediss://10.0.0.3:6378/0", redis_ca_file=str(tmp_path / "missing.pem"))


def test_settings_keep_a_readable_ca_file(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("pem")
    assert load_settings(redis_url="rediss://10.0.0.3:6378/0", redis_ca_file=str(ca)).redis_ca_file == str(ca)
    assert load_settings(redis_ca_file="").redis_ca_file is None


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_failure_is_a_warning_naming_its_use_then_one_line_per_interval(caplog):
    clock = FakeClock()
    report = FailureReporter(every_s=10, clock=clock)
    caplog.set_level(logging.WARNING, logger="redis")
    error = redis.ConnectionError("Connection refused")
    assert report("rate_limit", error) is True
    assert report("rate_limit", error) is False  # within the interval: counted, not written
    assert report("metrics", error) is True  # another use has its own interval
    clock.now += 10
    assert report("rate_limit", error) is True
    lines = [(r.levelname, r.getMessage(), r.fields) for r in caplog.records]
    assert [line[:2] for line in lines] == [("WARNING", "redis unavailable")] * 3
    assert [line[2]["redis_use"] for line in lines] == ["rate_limit", "metrics", "rate_limit"]
    assert lines[0][2]["error"] == "ConnectionError: Connection refused"
    assert lines[2][2]["suppressed"] == 1  # the line after the interval says how many were not written
    json.dumps(lines[0][2])  # the fields are plain JSON (Cloud Logging's jsonPayload)
