"""monitoring/grafana/*.json: every Grafana dashboard reads only metrics the service exports
(shared/infra/metrics.py) or recording rules of alerts.yml, its queries parse as PromQL (promtool, with Grafana's
variables filled in), every panel has a title and a unit, and each dashboard charts the families it is for.

Every check runs on every dashboard of the directory (parametrised); a dashboard must be listed in ``COVERAGE``
(what it must chart), so a new one cannot go unchecked.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.infra.metrics import FAMILIES, exported_names
from tests.monitoring import promql
from tests.monitoring.test_alert_rules import promtool


@dataclass(frozen=True)
class Coverage:
    families: tuple[str, ...]  # keys of FAMILIES: at least one query reads each
    variables: tuple[str, ...]  # query variables (besides the datasource) the dashboard must offer


COVERAGE = {
    "execution-quality.json": Coverage(
        families=("arrival_cost", "shortfall", "markout", "fill_ratio", "rejects", "venue_ack_latency", "orders",
                  "market_data_reads", "dms_fired", "orphan_venue_orders"),
        variables=("venue", "algorithm")),
    "operations.json": Coverage(
        families=("orders", "rejects", "venue_ack_latency", "submit_latency", "submit_retries", "venue_not_found",
                  "market_data_reads", "arrival_cost", "shortfall", "markout", "fill_ratio", "dms_fired",
                  "reconciled_orders", "orphan_venue_orders", "illegal_transitions"),
        variables=("venue",)),
}
DASHBOARDS = sorted(promql.GRAFANA_DIR.glob("*.json"))
# Grafana's built-in variables, as a rule file would have them (for promtool's parser); a dashboard's own
# variables become ".*" (its "All").
_BUILTIN = {"$__rate_interval": "5m", "$__range": "1d", "$__interval": "1m"}


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def all_panels(dashboard: dict) -> Iterator[dict]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # a collapsed row keeps its panels inside it


def queries(dashboard: dict) -> list[tuple[str, str]]:
    """(panel title, expr) of every target."""
    return [(p.get("title", "?"), t["expr"]) for p in all_panels(dashboard) for t in p.get("targets", []) if "expr" in t]


def query_variables(dashboard: dict) -> list[str]:
    return [v["name"] for v in dashboard["templating"]["list"] if v["type"] == "query"]


def unknown_names(dashboard: dict) -> set[str]:
    allowed = exported_names() | promql.recorded_names()
    return {f"{title}: {name}" for title, expr in queries(dashboard) for name in promql.metric_names(expr)
            if name not in allowed}


def unlabelled_panels(dashboard: dict) -> list[str]:
    """Panels without a title, and charts without a unit (fieldConfig.defaults.unit)."""
    problems = []
    for panel in all_panels(dashboard):
        title = (panel.get("title") or "").strip()
        if not title:
            problems.append(f"panel {panel.get('id')}: no title")
        if panel.get("type") != "row" and not panel.get("fieldConfig", {}).get("defaults", {}).get("unit"):
            problems.append(f"{title or panel.get('id')}: no unit")
    return problems


def filled(dashboard: dict, expr: str) -> str:
    values = {**_BUILTIN, **{f"${name}": ".*" for name in query_variables(dashboard)}}
    for var in sorted(values, key=len, reverse=True):
        expr = expr.replace(var, values[var])
    return expr


@pytest.fixture(params=DASHBOARDS, ids=lambda p: p.name)
def board(request) -> tuple[str, dict]:
    return request.param.name, load(request.param)


def test_every_dashboard_says_what_it_must_chart():
    assert [p.name for p in DASHBOARDS] == sorted(COVERAGE), "list each dashboard of monitoring/grafana in COVERAGE"
    for coverage in COVERAGE.values():
        assert set(coverage.families) <= set(FAMILIES), "COVERAGE names a family FAMILIES does not declare"


def test_dashboards_have_distinct_uids_and_titles():
    boards = [load(p) for p in DASHBOARDS]
    assert len({b["uid"] for b in boards}) == len(boards)
    assert len({b["title"] for b in boards}) == len(boards)


def test_dashboard_shape(board):
    name, dashboard = board
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["uid"] and dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for var in COVERAGE[name].variables:
        assert variables[var]["type"] == "query" and variables[var]["datasource"]["uid"] == "${datasource}"
        source = re.fullmatch(r"label_values\((\w+), (\w+)\)", variables[var]["definition"])
        assert source and source[1] in exported_names() and source[2] == var, variables[var]["definition"]
    ids = [p["id"] for p in all_panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in all_panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel.get("targets"), f"{panel['title']}: no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_every_panel_has_a_title_and_a_unit(board):
    _, dashboard = board
    assert unlabelled_panels(dashboard) == []


def test_every_query_reads_exported_metrics(board):
    _, dashboard = board
    assert queries(dashboard)
    assert unknown_names(dashboard) == set(), "not exported by shared/infra/metrics.py FAMILIES nor recorded in alerts.yml"


def test_every_family_it_is_for_is_charted(board):
    name, dashboard = board
    read = {n for _, expr in queries(dashboard) for n in promql.metric_names(expr)}
    exported = {FAMILIES[f].exported(f) for f in COVERAGE[name].families}
    missing = [e for e in sorted(exported) if not any(n == e or n.startswith(f"{e}_") for n in read)]
    assert missing == []


def test_variables_are_used(board):
    _, dashboard = board
    exprs = " ".join(e for _, e in queries(dashboard))
    unused = [v for v in query_variables(dashboard) if f'=~"${v}"' not in exprs]
    assert unused == []


def test_queries_parse(board, tmp_path):
    # promtool parses every query as a recording rule (Grafana's variables filled in).
    _, dashboard = board
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for i, (_, expr) in enumerate(queries(dashboard)):
        expr = filled(dashboard, expr)
        assert "$" not in expr, f"an unfilled Grafana variable in {expr}"
        lines += [f"      - record: dashboard:query:{i}", f"        expr: {json.dumps(expr)}"]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text("\n".join(lines) + "\n")
    proc = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---- each check can fail ----------------------------------------------------------------------------------
def test_a_misspelled_metric_is_detected(board):
    _, dashboard = board
    broken = copy.deepcopy(dashboard)
    target = next(t for p in all_panels(broken) for t in p.get("targets", []) if promql.metric_names(t["expr"]))
    name = sorted(promql.metric_names(target["expr"]))[0]
    target["expr"] = target["expr"].replace(name, f"{name}s")
    assert any(found.endswith(f": {name}s") for found in unknown_names(broken))


def test_a_panel_without_a_unit_or_title_is_detected(board):
    _, dashboard = board
    broken = copy.deepcopy(dashboard)
    chart, other = [p for p in all_panels(broken) if p["type"] != "row"][:2]
    del chart["fieldConfig"]["defaults"]["unit"]
    other["title"] = " "
    assert set(unlabelled_panels(broken)) == {f"{chart['title']}: no unit", f"panel {other['id']}: no title"}
