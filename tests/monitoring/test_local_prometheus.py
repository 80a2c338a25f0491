"""The local Prometheus of ``localstack.py start --with-prometheus``: its configuration is one the installed
Prometheus accepts (promtool check config, which also loads the alert rules), its key can read the metrics and
act for no strategy, the scrape proxy forwards the API's metrics URL and nothing else, and a missing binary
is named by its package. The running stack's side is tests/integration/test_prometheus.py."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from shared.app.fields import is_strategy_id
from shared.domain.access import Role
from tests.monitoring import promql
from tests.monitoring.test_alert_rules import promtool

SCRIPTS = promql.ROOT / "scripts"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


localstack = _script("localstack")
scrape_proxy = _script("scrape_proxy")
UPSTREAM = "http://127.0.0.1:8080"


def test_the_configuration_passes_promtool_and_loads_the_alert_rules(tmp_path):
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps(localstack.prometheus_config(8080, 9089)))
    proc = subprocess.run([promtool(), "check", "config", str(config)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{promql.ALERTS_YML}" in proc.stdout + proc.stderr and "rules found" in proc.stdout + proc.stderr


def test_the_configuration_scrapes_the_api_metrics_through_the_proxy():
    (job,) = localstack.prometheus_config(8080, 9089)["scrape_configs"]
    assert job["static_configs"] == [{"targets": ["127.0.0.1:8080"]}]
    assert (job["metrics_path"], job["params"]) == ("/api/v1/metrics", {"format": ["prometheus"]})
    assert job["proxy_url"] == "http://127.0.0.1:9089"


def test_this_prometheus_cannot_send_the_header_itself(tmp_path):
    """Why the scrape proxy exists; fails the day the installed Prometheus can do without it."""
    config = tmp_path / "prometheus.yml"
    broken = localstack.prometheus_config(8080, 9089)
    broken["scrape_configs"][0]["http_headers"] = {"X-API-Key": {"values": ["k"]}}  # Prometheus >= 2.55 only
    config.write_text(json.dumps(broken))
    proc = subprocess.run([promtool(), "check", "config", str(config)], capture_output=True, text=True,
                          timeout=120, check=False)
    if proc.returncode == 0:
        pytest.fail("this promtool accepts http_headers (Prometheus >= 2.55): the scrape proxy is no longer "
                    "needed; use http_headers in localstack.prometheus_config and drop scripts/scrape_proxy.py")


def test_the_scrape_key_is_an_operator_key_of_no_strategy_a_request_can_name():
    record = localstack.prometheus_key_record("k")
    assert record.role is Role.OPERATOR  # the lowest role GET /metrics takes
    assert not record.all_strategies and not record.may_trade(None)
    (strategy,) = record.strategies
    assert not is_strategy_id(strategy)  # the input rules of orders, heartbeats and re-enables refuse it
    assert is_strategy_id("demo")  # (the check itself accepts a real one)


@pytest.mark.parametrize(("target", "forwarded"), [
    ("http://127.0.0.1:8080/api/v1/metrics?format=prometheus", f"{UPSTREAM}/api/v1/metrics?format=prometheus"),
    ("http://127.0.0.1:8080/api/v1/metrics", f"{UPSTREAM}/api/v1/metrics"),
    ("/api/v1/metrics?format=prometheus", f"{UPSTREAM}/api/v1/metrics?format=prometheus"),
    ("http://127.0.0.1:8080/api/v1/orders", None),
    ("http://127.0.0.1:8080/api/v1/metrics/../orders", None),
    ("http://127.0.0.1:8081/api/v1/metrics", None),
    ("http://example.com/api/v1/metrics", None),
    ("https://127.0.0.1:8080/api/v1/metrics", None),
])
def test_the_proxy_forwards_the_metrics_url_alone(target, forwarded):
    assert scrape_proxy.forwarded_url(target, UPSTREAM) == forwarded


def test_a_missing_prometheus_is_named_by_its_package(monkeypatch):
    monkeypatch.setattr(localstack.shutil, "which", lambda name: None)
    with pytest.raises(localstack.StackError, match=r"Debian package prometheus \(apt-get install -y prometheus\)"):
        localstack.prometheus_binary()
