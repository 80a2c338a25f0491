"""Reading the monitoring artifacts without a YAML library (the service's venv has none): the metric names a PromQL
expression uses, the rules of a Prometheus rule file and the cases of a promtool test file.

The readers understand the forms monitoring/prometheus/ is written in (one rule per ``- alert:``/``- record:``
item, ``expr:`` on one line or as a ``|`` block); test_alert_rules.py checks that they see as many rules as
promtool itself counts, so a rule written in another form fails loudly instead of going unread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "monitoring" / "prometheus"
ALERTS_YML = PROMETHEUS_DIR / "alerts.yml"
RULE_TESTS = (PROMETHEUS_DIR / "alerts_test.yml", PROMETHEUS_DIR / "alerts_baseline_test.yml")
GRAFANA_DIR = ROOT / "monitoring" / "grafana"

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or",
            "unless", "inf", "nan", "atan2"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GRAFANA_VAR = re.compile(r"\$\{[^}]*\}|\$\w+")
_IDENT = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """Every metric name an expression selects: identifiers that are not functions or aggregations (followed by
    "("), keywords, label names (inside {...} or by/without/on/ignoring/group_x (...)) or durations."""
    text = _GRAFANA_VAR.sub("1", expr)  # $__rate_interval, ${venue}: placeholders, never metric names
    text = _STRING.sub('""', text)
    text = _GROUPING.sub(" ", text)
    while _MATCHERS.search(text):
        text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    names = set()
    for m in _IDENT.finditer(text):
        name, call = m[1], m[2]
        if call or name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names


@dataclass(frozen=True)
class Rule:
    kind: str  # "alert" or "record"
    name: str
    expr: str
    for_: str | None


def rules(path: Path = ALERTS_YML) -> list[Rule]:
    lines = path.read_text().splitlines()
    found: list[Rule] = []
    current: dict | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if m := re.match(r"^\s*-\s+(alert|record):\s*(\S+)\s*$", line):
            if current:
                found.append(Rule(**current))
            current = {"kind": m[1], "name": m[2], "expr": "", "for_": None}
        elif current and (m := re.match(r"^(\s*)expr:\s*(.*?)\s*$", line)):
            indent, value = len(m[1]), m[2]
            if value in ("|", "|-", ">", ">-"):
                body = []
                while i + 1 < len(lines) and (not lines[i + 1].strip()
                                              or len(lines[i + 1]) - len(lines[i + 1].lstrip()) > indent):
                    i += 1
                    body.append(lines[i].strip())
                value = "\n".join(body).strip()
            elif value[:1] in ("'", '"'):
                value = value[1:-1]
            current["expr"] = value
        elif current and (m := re.match(r"^\s*for:\s*(\S+)\s*$", line)):
            current["for_"] = m[1]
        i += 1
    if current:
        found.append(Rule(**current))
    return found


def alert_names(path: Path = ALERTS_YML) -> list[str]:
    return [r.name for r in rules(path) if r.kind == "alert"]


def recorded_names(path: Path = ALERTS_YML) -> set[str]:
    return {r.name for r in rules(path) if r.kind == "record"}


def rule_test_cases(path: Path) -> list[tuple[str, bool]]:
    """(alertname, fires) of every alert_rule_test: fires is False for ``exp_alerts: []``."""
    cases, alert = [], None
    for line in path.read_text().splitlines():
        if m := re.match(r"^\s*(?:-\s+)?alertname:\s*(\S+)\s*$", line):
            alert = m[1]
        elif alert and (m := re.match(r"^\s*exp_alerts:\s*(.*?)\s*(?:#.*)?$", line)):
            cases.append((alert, m[1] != "[]"))
            alert = None
    return cases
