"""The metric catalog is enforced: an undeclared family or label set is refused before anything is recorded, and
strategies outside the configured set are folded into "other" (bounded labels)."""

import pytest

from shared.infra.metrics import FAMILIES, RedisMetrics, exported_names


class _NoRedis:
    def pipeline(self, **_: object) -> None:  # never reached: the writer thread is not started on refusal
        raise AssertionError("nothing may be written for a refused metric")


def test_an_undeclared_family_or_label_set_is_refused():
    metrics = RedisMetrics(_NoRedis())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a declared counter"):
        metrics.count("made_up")
    with pytest.raises(ValueError, match="not a declared counter"):
        metrics.count("rejects", venue="binance")  # reason missing
    with pytest.raises(ValueError, match="not a declared histogram"):
        metrics.observe("rejects", 1.0, venue="binance", reason="x")  # a counter, not a histogram
    with pytest.raises(ValueError, match="not a declared histogram"):
        metrics.observe("markout", 1.0, venue="binance", horizon="1", order_id="o1")  # unbounded label


def test_strategies_outside_the_configured_set_are_other():
    metrics = RedisMetrics(_NoRedis(), frozenset({"alpha"}))  # type: ignore[arg-type]
    labels = {"venue": "binance", "algorithm": "TWAP"}
    assert metrics._labels("arrival_cost", {**labels, "strategy": "alpha"}, "histogram")["strategy"] == "alpha"
    assert metrics._labels("arrival_cost", {**labels, "strategy": "s-42"}, "histogram")["strategy"] == "other"


def test_cost_histograms_span_negative_values_and_names_carry_the_unit():
    for name in ("arrival_cost", "shortfall", "markout"):
        assert min(FAMILIES[name].buckets) < 0 < max(FAMILIES[name].buckets)
    names = exported_names()
    assert {"execution_arrival_cost_bps_bucket", "execution_markout_bps_count", "execution_rejects_total",
            "execution_venue_ack_latency_seconds_sum", "execution_fill_ratio_bucket"} <= names
