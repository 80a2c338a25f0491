"""The stack's Prometheus (``localstack.py start --with-prometheus``; scripts/test.sh starts the suite's stack with
it) scrapes the service: its one target, the API's /api/v1/metrics, is up through the key-adding proxy; a fill is
seen in Prometheus once it is in the API's own counts; the alert rules of monitoring/prometheus/alerts.yml are
loaded and evaluate without errors; and every query of every dashboard runs on it.

A stack started without the flag has no PROMETHEUS_URL: these tests then fail saying so (never skip)."""

from __future__ import annotations

import functools
import json
import time
import uuid
from typing import Any

import pytest
import requests

from tests.integration.conftest import eventually, wait_for
from tests.monitoring import promql
from tests.monitoring import test_dashboard as dashboard_checks

FILLING = {"strategy_id": "prometheus", "exchange": "binance", "symbol": "BTC/USDT", "side": "buy",
           "quantity": "0.01", "order_type": "limit", "price": "51000"}  # above the simulator's ask: fills
DEADLINE_S = 90.0  # scrapes every 5 s; generous for a loaded machine
until = functools.partial(eventually, timeout=DEADLINE_S, pause=0.5)


@pytest.fixture(scope="module")
def prometheus(stack) -> str:
    url = stack.env.get("PROMETHEUS_URL")
    if not url:
        pytest.fail("the stack has no Prometheus (PROMETHEUS_URL unset): start it with "
                    "`scripts/localstack.py start --with-prometheus` (scripts/test.sh does)")
    return url


def prom(prometheus: str, path: str, **params: str) -> Any:
    resp = requests.get(f"{prometheus}/api/v1/{path}", params=params, timeout=10)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "success", body
    return body["data"]


def test_the_api_is_scraped_and_up(prometheus, stack):
    api_host = stack.api_url.split("//", 1)[1].split("/", 1)[0]

    def targets_up():
        return [t for t in prom(prometheus, "targets", state="active")["activeTargets"]
                if t["labels"].get("job") == "execution" and t["health"] == "up"]

    (target,) = until(targets_up, "the execution target up")
    assert target["labels"]["instance"] == api_host  # the API itself, not the proxy
    assert target["scrapeUrl"] == f"http://{api_host}/api/v1/metrics?format=prometheus"
    assert target["lastError"] == ""
    (up,) = prom(prometheus, "query", query='up{job="execution"}')["result"]
    assert up["value"][1] == "1"


def test_the_scrape_proxy_adds_the_key_to_the_metrics_url_and_forwards_nothing_else(stack):
    ports = json.loads((stack.state / "state.json").read_text())["ports"]
    proxies = {"http": f"http://127.0.0.1:{ports['prometheus-proxy']}"}
    url = f"{stack.api_url}/metrics?format=prometheus"
    assert requests.get(url, timeout=30).status_code == 401  # no key: refused, unless the proxy adds its own
    metrics = requests.get(url, proxies=proxies, timeout=30)
    assert metrics.status_code == 200, metrics.text
    assert metrics.headers["Content-Type"].startswith("text/plain")
    for method, path in (("GET", "/orders"), ("GET", "/adapters"), ("POST", "/metrics")):
        refused = requests.request(method, f"{stack.api_url}{path}", proxies=proxies, timeout=30)
        assert refused.status_code == 403 and "forwards only GET" in refused.text, (method, path)


def _filled_count(api) -> int:
    rows = api("GET", "/metrics").json()["counters"].get("orders", [])
    return sum(r["value"] for r in rows
               if r["labels"].get("status") == "filled" and r["labels"].get("venue") == "binance")


def _prometheus_filled(prometheus: str) -> float | None:
    result = prom(prometheus, "query", query='sum(execution_orders_total{status="filled", venue="binance"})')["result"]
    return float(result[0]["value"][1]) if result else None


def test_a_fill_reaches_prometheus(prometheus, api):
    before = _filled_count(api)
    order = api("POST", "/orders", {**FILLING, "client_order_id": f"prom-{uuid.uuid4().hex[:20]}"}).json()
    assert wait_for(api, order["order_id"], lambda o: o["status"] == "filled", timeout=60)["status"] == "filled"
    # The API's count (recorded in Redis a moment after the event) first, then Prometheus's copy of it.
    after = until(lambda: (n := _filled_count(api)) > before and n, "the API's filled count up")
    seen = until(lambda: (v := _prometheus_filled(prometheus)) is not None and v >= after and v,
                 f"execution_orders_total{{status=filled, venue=binance}} >= {after} in Prometheus")
    assert seen >= after > before
    # A histogram of the same order's path, too: its acknowledgement latency.
    (ack,) = until(lambda: prom(prometheus, "query",
                                query='sum(execution_venue_ack_latency_seconds_count{venue="binance"})')["result"],
                   "execution_venue_ack_latency_seconds_count in Prometheus")
    assert float(ack["value"][1]) >= 1


@pytest.mark.timeout(300)  # a rule group evaluates once a minute
def test_the_alert_rules_are_loaded_and_evaluate(prometheus):
    expected = {(r.kind, r.name) for r in promql.rules()}

    def loaded():
        groups = prom(prometheus, "rules")["groups"]
        return {("alert" if r["type"] == "alerting" else "record", r["name"]): r for g in groups for r in g["rules"]}

    rules = until(lambda: (found := loaded()).keys() == expected and found, "every rule of alerts.yml loaded")
    # Groups evaluate every minute: wait for one evaluation of each rule, and none may fail.
    rules = until(lambda: (found := loaded()) and all(r["health"] != "unknown" for r in found.values()) and found,
                  "every rule evaluated once", timeout=150)
    failing = {name: r.get("lastError") for (_, name), r in rules.items() if r["health"] != "ok"}
    assert failing == {}


@pytest.mark.parametrize("path", dashboard_checks.DASHBOARDS, ids=lambda p: p.name)
def test_every_dashboard_query_runs_on_the_stack(prometheus, path):
    """Grafana's variables filled in as its "All" would, over the last 15 minutes: Prometheus answers each query
    (an error here is one Grafana would show on the panel)."""
    dashboard = dashboard_checks.load(path)
    end = time.time()
    failed = {}
    for title, expr in dashboard_checks.queries(dashboard):
        resp = requests.get(f"{prometheus}/api/v1/query_range", timeout=30, params={
            "query": dashboard_checks.filled(dashboard, expr), "start": end - 900, "end": end, "step": "15"})
        if resp.status_code != 200 or resp.json().get("status") != "success":
            failed[title] = resp.text[:300]
    assert failed == {}
