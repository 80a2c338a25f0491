"""monitoring/grafana/execution-quality.json: a Grafana dashboard whose every query reads only metrics the service
exports (shared/infra/metrics.py) or recording rules of alerts.yml, parses as PromQL (promtool, on the
queries with Grafana's variables filled in), and covers each key family of execution quality."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.infra.metrics import exported_names
from tests.monitoring import promql
from tests.monitoring.test_alert_rules import promtool

# Each key family must be charted: (the part of its name, at least one query reading it).
KEY_FAMILIES = ("arrival_cost", "shortfall", "markout", "fill_ratio", "rejects", "venue_ack_latency", "orders",
                "market_data_reads", "dms_fired", "orphan_venue_orders")
# Grafana's variables, as a rule file would have them (for promtool's parser).
_FILLED = {"$__rate_interval": "5m", "$__range": "1d", "$__interval": "1m", "$venue": ".*", "$algorithm": ".*"}


def load(path: Path = promql.DASHBOARD) -> dict:
    return json.loads(path.read_text())


def all_panels(dashboard: dict) -> Iterator[dict]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # a collapsed row keeps its panels inside it


def queries(dashboard: dict) -> list[tuple[str, str]]:
    """(panel title, expr) of every target."""
    return [(p.get("title", "?"), t["expr"]) for p in all_panels(dashboard) for t in p.get("targets", []) if "expr" in t]


def unknown_names(dashboard: dict) -> set[str]:
    allowed = exported_names() | promql.recorded_names()
    return {f"{title}: {name}" for title, expr in queries(dashboard) for name in promql.metric_names(expr)
            if name not in allowed}


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return load()


def test_dashboard_shape(dashboard):
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["uid"] and dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for name in ("venue", "algorithm"):
        assert variables[name]["type"] == "query" and variables[name]["datasource"]["uid"] == "${datasource}"
    ids = [p["id"] for p in all_panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in all_panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel.get("targets"), f"{panel['title']}: no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_every_query_reads_exported_metrics(dashboard):
    assert queries(dashboard)
    assert unknown_names(dashboard) == set(), "not exported by shared/infra/metrics.py FAMILIES nor recorded in alerts.yml"


def test_every_key_family_is_charted(dashboard):
    read = {name for _, expr in queries(dashboard) for name in promql.metric_names(expr)}
    missing = [f for f in KEY_FAMILIES if not any(n.startswith(f"execution_{f}") for n in read)]
    assert missing == []


def test_variables_are_used(dashboard):
    exprs = " ".join(e for _, e in queries(dashboard))
    assert '=~"$venue"' in exprs and '=~"$algorithm"' in exprs


def test_queries_parse(dashboard, tmp_path):
    # promtool parses every query as a recording rule (Grafana's variables filled in).
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for i, (_, expr) in enumerate(queries(dashboard)):
        for var in sorted(_FILLED, key=len, reverse=True):
            expr = expr.replace(var, _FILLED[var])
        assert "$" not in expr, f"an unfilled Grafana variable in {expr}"
        lines += [f"      - record: dashboard:query:{i}", f"        expr: {json.dumps(expr)}"]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text("\n".join(lines) + "\n")
    proc = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_misspelled_metric_is_detected(dashboard):
    broken = copy.deepcopy(dashboard)
    target = next(t for p in all_panels(broken) for t in p.get("targets", []) if "execution_fill_ratio_sum" in t["expr"])
    target["expr"] = target["expr"].replace("execution_fill_ratio_sum", "execution_fill_ration_sum")
    scratch = Path(tempfile.mkdtemp(prefix="dashboard-"))
    try:
        path = scratch / "dashboard.json"
        path.write_text(json.dumps(broken))
        found = unknown_names(load(path))
    finally:
        shutil.rmtree(scratch)
    assert any(re.search(r": execution_fill_ration_sum$", f) for f in found), found
