"""monitoring/prometheus/: the alert rules load (promtool check rules), their unit tests pass (promtool test
rules), every alert is tested firing and silent, and every metric they read is one the service exports
(shared/infra/metrics.py) or a recording rule of the file. promtool is a prerequisite (Debian package
``prometheus``): missing, the tests fail naming it; they never skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from shared.infra.metrics import exported_names
from tests.monitoring import promql


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: apt-get install -y prometheus (the Debian package ships promtool)")
    return path


def run(*args: str, cwd: Path = promql.PROMETHEUS_DIR) -> subprocess.CompletedProcess:
    return subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def test_rules_load_and_the_reader_sees_every_rule():
    proc = run("check", "rules", promql.ALERTS_YML.name)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    counted = re.search(r"SUCCESS: (\d+) rules found", proc.stdout)
    assert counted, proc.stdout
    # Our reader (no YAML library) must see exactly the rules promtool sees, or the name checks read too little.
    assert len(promql.rules()) == int(counted[1])
    assert all(r.expr for r in promql.rules())


def test_promtool_unit_tests_pass():
    proc = run("test", "rules", *(p.name for p in promql.RULE_TESTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_is_tested_firing_and_silent():
    cases = [c for path in promql.RULE_TESTS for c in promql.rule_test_cases(path)]
    alerts = promql.alert_names()
    assert alerts, "no alerts read from alerts.yml"
    missing = [f"{a}: no case where it {'fires' if fires else 'stays silent (exp_alerts: [])'}"
               for a in alerts for fires in (True, False) if (a, fires) not in cases]
    assert missing == []
    unknown = sorted({a for a, _ in cases} - set(alerts))
    assert unknown == [], f"test cases for alerts alerts.yml does not define: {unknown}"


def test_every_alert_has_for_severity_and_annotations():
    text = promql.ALERTS_YML.read_text()
    for rule in promql.rules():
        if rule.kind != "alert":
            continue
        assert rule.for_ is not None, f"{rule.name}: no for:"
        block = text.split(f"- alert: {rule.name}\n", 1)[1].split("- alert:", 1)[0]
        assert re.search(r"severity: (critical|warning)", block), f"{rule.name}: no severity label"
        assert "summary:" in block and "description:" in block, f"{rule.name}: needs summary and description"


def test_rules_read_only_exported_metrics():
    allowed = exported_names() | promql.recorded_names()
    unknown = {f"{r.name}: {n}" for r in promql.rules() for n in promql.metric_names(r.expr) if n not in allowed}
    assert unknown == set(), f"not exported by shared/infra/metrics.py (FAMILIES) nor recorded here: {sorted(unknown)}"


def test_name_check_catches_a_misspelled_metric():
    broken = "sum by (venue) (rate(execution_reject_total{venue=~\"$venue\"}[5m])) / on (venue) venue:x:y"
    assert promql.metric_names(broken) == {"execution_reject_total", "venue:x:y"}
    assert "execution_reject_total" not in exported_names()


def test_a_broken_threshold_fails_the_unit_tests():
    # The unit tests can fail: with the reject-rate threshold raised past the tested 10%, promtool must say so.
    scratch = Path(tempfile.mkdtemp(prefix="alerts-"))
    try:
        for path in (promql.ALERTS_YML, *promql.RULE_TESTS):
            shutil.copy(path, scratch / path.name)
        rules = scratch / promql.ALERTS_YML.name
        text = rules.read_text()
        assert "venue:execution_rejects:ratio15m > 0.05" in text, "mutation target moved: update this test"
        rules.write_text(text.replace("venue:execution_rejects:ratio15m > 0.05", "venue:execution_rejects:ratio15m > 0.5"))
        proc = run("test", "rules", "alerts_test.yml", cwd=scratch)
    finally:
        shutil.rmtree(scratch)
    assert proc.returncode != 0
    assert "ExecutionRejectRateHigh" in proc.stdout + proc.stderr
