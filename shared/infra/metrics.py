"""Metrics shared by every function instance: recorded in Redis, exposed through prometheus-client.

Serverless instances come and go, so per-process counters would be meaningless: every count and histogram
observation goes to Redis, and ``RedisCollector`` turns the Redis state into Prometheus families for
``GET /api/v1/metrics``. Recording never waits and never fails the work it describes: observations queue in
memory and a background thread writes them in pipelined batches (milliseconds later; an instance that is shut
down at once may lose its last few).

Families: ``execution_orders_total{status,venue,strategy}`` (order events by status),
``execution_<name>_total{...}`` counters (fills, firestore reads/writes, ...), and histograms
``execution_<name>_seconds{...}`` (submit latency: created -> venue ack, ...).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_PREFIX = "metrics"


def _labels_key(labels: dict[str, str]) -> str:
    return json.dumps(labels, sort_keys=True, separators=(",", ":"))


class RedisMetrics:
    def __init__(self, client: redis.Redis) -> None:
        self._r = client
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
                logger.debug("%d metric updates not recorded: %s", len(batch), exc)

    def order_event(self, status: str, venue: str, strategy: str) -> None:
        self.count("orders", status=status, venue=venue, strategy=strategy)

    def count(self, name: str, amount: int = 1, **labels: str) -> None:
        self._run(lambda p: (p.sadd(f"{_PREFIX}:counters", name),
                             p.hincrby(f"{_PREFIX}:counter:{name}", _labels_key(labels), amount)))

    def observe(self, name: str, value: float, **labels: str) -> None:
        key = _labels_key(labels)

        def fill(p: Any) -> None:
            p.sadd(f"{_PREFIX}:histograms", name)
            base = f"{_PREFIX}:hist:{name}:{key}"
            p.sadd(f"{_PREFIX}:hist:{name}", key)
            for bound in BUCKETS:
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
            series = []
            for key in sorted(self._r.smembers(f"{_PREFIX}:hist:{name}")):
                h = self._r.hgetall(f"{_PREFIX}:hist:{name}:{key}")
                count = int(h.get("count", 0))
                buckets = [(b, int(h.get(f"le:{b}", 0))) for b in BUCKETS]
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
            family = CounterMetricFamily(f"execution_{name}", f"{name} (all instances)", labels=label_names)
            for row in rows:
                family.add_metric([row["labels"].get(k, "") for k in label_names], row["value"])
            yield family
        for name, series in snap["histograms"].items():
            label_names = sorted({k for s in series for k in s["labels"]})
            family = HistogramMetricFamily(f"execution_{name}_seconds", f"{name} (all instances)",
                                           labels=label_names)
            for s in series:
                buckets = [(str(b), c) for b, c in s["buckets"]] + [("+Inf", s["count"])]
                family.add_metric([s["labels"].get(k, "") for k in label_names], buckets, sum_value=s["sum"])
            yield family


def prometheus_text(metrics: RedisMetrics) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(metrics))
    return generate_latest(registry)
