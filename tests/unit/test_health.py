"""Health aggregation over probes (no I/O: the probes are plain callables)."""

import threading

from shared.app.health import check


def ok():
    return None


def broken():
    raise ConnectionError("connection refused\nsecond line")


def test_all_ok():
    report = check({"a": ok, "b": ok})
    assert report.ok and report.failed == []
    body = report.as_dict()
    assert body["status"] == "ok"
    assert set(body["dependencies"]) == {"a", "b"}
    assert all(d["latency_ms"] >= 0 for d in body["dependencies"].values())


def test_failures_are_named_with_a_one_line_error():
    report = check({"a": ok, "redis": broken})
    assert not report.ok and report.failed == ["redis"]
    assert report.as_dict()["dependencies"]["redis"]["error"] == "ConnectionError: connection refused"


def test_a_hanging_probe_times_out_without_delaying_the_others():
    release = threading.Event()
    report = check({"slow": lambda: release.wait(5), "fast": ok}, timeout=0.2)
    release.set()
    assert report.failed == ["slow"]
    assert "timeout" in report.as_dict()["dependencies"]["slow"]["error"]


def test_latency_uses_the_injected_clock():
    ticks = iter([1.0, 1.25])
    report = check({"a": ok}, clock=lambda: next(ticks))
    assert report.results[0].latency_ms == 250.0
