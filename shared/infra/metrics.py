"""Metrics shared by every function instance: recorded in Redis, exposed through prometheus-client.

Serverless instances come and go, so per-process counters would be meaningless: every count and histogram
observation goes to Redis, and ``RedisCollector`` turns the Redis state into Prometheus families for
``GET /api/v1/metrics``. Recording never waits and never fails the work it describes: observations queue in
memory and a background thread writes them in pipelined batches (milliseconds later; an instance that is shut
down at once may lose its last few).

Every family is declared once, in ``FAMILIES`` (its kind, labels, unit and buckets): recording a name or a label
that is not declared raises, so the catalog is exactly what the service exports (the Grafana dashboard and the
alert rules are checked against it). Counters are exported as ``execution_<name>_total``, histograms as
``execution_<name>_<unit>`` (``_bucket``/``_sum``/``_count``). Labels are bounded: venues and symbols are
configured, reasons and codes are enums, and ``strategy`` is one of the configured ``METRIC_STRATEGIES`` or
``other`` (``RedisMetrics`` folds it).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from shared.infra import redis_client

logger = logging.getLogger(__name__)

SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Costs and markouts in basis points: both signs (a cost can be a gain, a markout can go against us).
BPS = (-100.0, -50.0, -25.0, -10.0, -5.0, -2.0, -1.0, 0.0, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0)
RATIO = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)
_PREFIX = "metrics"
OTHER = "other"


@dataclass(frozen=True)
class Family:
    kind: Literal["counter", "histogram"]
    help: str
    labels: tuple[str, ...] = ()
    unit: str = ""  # histograms: the name's suffix (seconds, bps; none when the name already says it: fill_ratio)
    buckets: tuple[float, ...] = ()

    def exported(self, name: str) -> str:
        if self.kind == "counter":
            return f"execution_{name}_total"
        return f"execution_{name}_{self.unit}" if self.unit else f"execution_{name}"


def _counter(help_: str, *labels: str) -> Family:
    return Family("counter", help_, labels)


def _histogram(help_: str, unit: str, buckets: tuple[float, ...], *labels: str) -> Family:
    return Family("histogram", help_, labels, unit, buckets)


FAMILIES: dict[str, Family] = {
    "orders": _counter("order events published, by the status they announce", "status", "venue", "strategy"),
    "rejects": _counter("orders that ended rejected, by venue and reason (shared/domain/orders.reject_reason)",
                        "venue", "reason"),
    "submit_retries": _counter("venue placements tried again after a retryable error", "venue", "code"),
    "venue_not_found": _counter("orders the venue did not know when looked up", "venue"),
    "reconciled_orders": _counter("orders the sweep's reconcile tasks checked, by outcome", "venue", "outcome"),
    "orphan_venue_orders": _counter("venue orders that belong to no record", "venue", "status"),
    "illegal_transitions": _counter("venue reports that would have broken the state machine (ignored)"),
    "firestore_reads": _counter("Firestore documents read, by the work that read them (orders, tca)", "caller"),
    "firestore_writes": _counter("Firestore documents written, by the work that wrote them (orders, tca)",
                                 "caller"),
    "market_data_reads": _counter("market data reads for execution quality (quotes, books), by outcome "
                                  "(ok, stale, failed)", "venue", "outcome"),
    "dms_fired": _counter("dead man's switches that fired (a strategy's or the venue-wide one)", "scope"),
    "submit_latency": _histogram("order created -> venue acknowledgement", "seconds", SECONDS, "venue"),
    "venue_ack_latency": _histogram("first venue order sent -> venue acknowledgement", "seconds", SECONDS, "venue"),
    "arrival_cost": _histogram("arrival cost of each ended top-level order, s*(P - P0)/P0 (positive: it cost us)",
                               "bps", BPS, "venue", "algorithm", "strategy"),
    "shortfall": _histogram("implementation shortfall of each ended top-level order, in bps of X*Pd",
                            "bps", BPS, "venue", "algorithm", "strategy"),
    "markout": _histogram("markout of each fill at each horizon, s*(m(t+h) - p)/p (positive: in our favour)",
                          "bps", BPS, "venue", "horizon"),
    "fill_ratio": _histogram("filled / ordered of each ended top-level order", "", RATIO,
                             "venue", "algorithm", "strategy"),
}


def exported_names() -> set[str]:
    """Every series name /api/v1/metrics can show (histograms with their _bucket, _sum and _count)."""
    names: set[str] = set()
    for name, family in FAMILIES.items():
        base = family.exported(name)
        names |= {base} if family.kind == "counter" else {f"{base}_bucket", f"{base}_sum", f"{base}_count"}
    return names


def _labels_key(labels: dict[str, str]) -> str:
    return json.dumps(labels, sort_keys=True, separators=(",", ":"))


class RedisMetrics:
    def __init__(self, client: redis.Redis, strategies: frozenset[str] = frozenset()) -> None:
        self._r = client
        self._strategies = strategies  # strategy label values kept; any other is "other"
        self._queue: queue.SimpleQueue[Callable[[Any], Any]] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._lock = threading.Lock()

    def _run(self, fill: Callable[[Any], Any]) -> None:
        if self._writer is None or not self._writer.is_alive():
            # Started on first use, in the process that records (a server may fork after building this).
            with self._lock:
                if self._writer is None or not self._writer.is_alive():
                    self._writer = threading.Thread(target=self._drain, name="metrics", daemon=True)
                    self._writer.start()
        self._queue.put(fill)

    def _drain(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < 500:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                pipe = self._r.pipeline(transaction=False)
                for fill in batch:
                    fill(pipe)
                pipe.execute()
            except redis.RedisError as exc:
                redis_client.report_unavailable("metrics", exc)
                logger.debug("%d metric updates not recorded: %s", len(batch), exc)

    def order_event(self, status: str, venue: str, strategy: str) -> None:
        self.count("orders", status=status, venue=venue, strategy=strategy)

    def _labels(self, name: str, labels: dict[str, str], kind: str) -> dict[str, str]:
        family = FAMILIES.get(name)
        if family is None or family.kind != kind or set(labels) != set(family.labels):
            raise ValueError(f"metric {name}{sorted(labels)} is not a declared {kind} (shared/infra/metrics.FAMILIES)")
        if "strategy" in labels and labels["strategy"] not in self._strategies:
            labels = {**labels, "strategy": OTHER}
        return labels

    def count(self, name: str, amount: int = 1, **labels: str) -> None:
        labels = self._labels(name, labels, "counter")
        self._run(lambda p: (p.sadd(f"{_PREFIX}:counters", name),
                             p.hincrby(f"{_PREFIX}:counter:{name}", _labels_key(labels), amount)))

    def observe(self, name: str, value: float, **labels: str) -> None:
        key = _labels_key(self._labels(name, labels, "histogram"))
        buckets = FAMILIES[name].buckets

        def fill(p: Any) -> None:
            p.sadd(f"{_PREFIX}:histograms", name)
            base = f"{_PREFIX}:hist:{name}:{key}"
            p.sadd(f"{_PREFIX}:hist:{name}", key)
            for bound in buckets:
                if value <= bound:
                    p.hincrby(base, f"le:{bound}", 1)
            p.hincrby(base, "count", 1)
            p.hincrbyfloat(base, "sum", value)

        self._run(fill)

    # ---- reading -----------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Everything recorded, as plain data (the JSON form of the metrics endpoint)."""
        counters: dict[str, list[dict[str, Any]]] = {}
        for name in sorted(self._r.smembers(f"{_PREFIX}:counters")):
            rows = self._r.hgetall(f"{_PREFIX}:counter:{name}")
            counters[name] = [{"labels": json.loads(k), "value": int(v)} for k, v in sorted(rows.items())]
        histograms: dict[str, list[dict[str, Any]]] = {}
        for name in sorted(self._r.smembers(f"{_PREFIX}:histograms")):
            if name not in FAMILIES:
                continue  # recorded by an older release under a name no longer declared
            bounds = FAMILIES[name].buckets
            series = []
            for key in sorted(self._r.smembers(f"{_PREFIX}:hist:{name}")):
                h = self._r.hgetall(f"{_PREFIX}:hist:{name}:{key}")
                count = int(h.get("count", 0))
                buckets = [(b, int(h.get(f"le:{b}", 0))) for b in bounds]
                series.append({"labels": json.loads(key), "count": count, "sum": float(h.get("sum", 0)),
                               "buckets": buckets})
            histograms[name] = series
        return {"counters": counters, "histograms": histograms}


class RedisCollector(Collector):
    def __init__(self, metrics: RedisMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Any]:
        snap = self._metrics.snapshot()
        for name, rows in snap["counters"].items():
            label_names = sorted({k for row in rows for k in row["labels"]})
            declared = FAMILIES.get(name)
            family = CounterMetricFamily(f"execution_{name}", declared.help if declared else name,
                                         labels=label_names)
            for row in rows:
                family.add_metric([row["labels"].get(k, "") for k in label_names], row["value"])
            yield family
        for name, series in snap["histograms"].items():
            label_names = sorted({k for s in series for k in s["labels"]})
            declared = FAMILIES[name]
            family = HistogramMetricFamily(declared.exported(name), declared.help, labels=label_names)
            for s in series:
                buckets = [(str(b), c) for b, c in s["buckets"]] + [("+Inf", s["count"])]
                family.add_metric([s["labels"].get(k, "") for k in label_names], buckets, sum_value=s["sum"])
            yield family


def prometheus_text(metrics: RedisMetrics) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(metrics))
    return generate_latest(registry)
