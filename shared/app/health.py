"""Health: probe every dependency in parallel, each with a deadline, and report status and latency.

A probe is a no-argument callable that raises when its dependency is unusable. ``check`` runs probes in
parallel so the answer takes as long as the slowest probe, not the sum; a probe that overruns the deadline
counts as failed ("timeout"). ``default_probes`` builds the real ones from the process-wide clients.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass

Probe = Callable[[], object]

_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="health")


@dataclass(frozen=True)
class ProbeResult:
    name: str
    ok: bool
    latency_ms: float
    error: str | None = None


@dataclass(frozen=True)
class HealthReport:
    results: tuple[ProbeResult, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failed(self) -> list[str]:
        return [r.name for r in self.results if not r.ok]

    def as_dict(self) -> dict[str, object]:
        return {
            "status": "ok" if self.ok else "unavailable",
            "failed": self.failed,
            "dependencies": {
                r.name: {"ok": r.ok, "latency_ms": round(r.latency_ms, 2), **({"error": r.error} if r.error else {})}
                for r in self.results
            },
        }


def _timed(probe: Probe, clock: Callable[[], float]) -> tuple[float, BaseException | None]:
    start = clock()
    try:
        probe()
    except Exception as exc:  # any failure of a dependency is reported, not raised
        return (clock() - start) * 1000, exc
    return (clock() - start) * 1000, None


def check(probes: Mapping[str, Probe], timeout: float = 2.0, clock: Callable[[], float] = time.perf_counter) -> HealthReport:
    futures = {name: _pool.submit(_timed, probe, clock) for name, probe in probes.items()}
    wait(futures.values(), timeout=timeout)
    results = []
    for name, fut in futures.items():
        if not fut.done():
            results.append(ProbeResult(name, False, timeout * 1000, f"timeout after {timeout:g}s"))
            continue
        latency, exc = fut.result()
        error = None if exc is None else f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        results.append(ProbeResult(name, exc is None, latency, error))
    return HealthReport(tuple(results))


def default_probes() -> dict[str, Probe]:
    """Probes of the real dependencies: one cheap round trip each, and each adapter's health."""
    from shared.app.adapters import health_probes
    from shared.infra import clients
    from shared.infra.config import settings

    cfg = settings()
    return {
        **health_probes(clients.venues()),
        "pubsub": lambda: clients.publisher().get_topic(
            request={"topic": cfg.topic_path(cfg.order_events_topic)}, timeout=2
        ),
        "firestore": lambda: clients.firestore_db().collection("_health").document("probe").get(timeout=2),
        "redis": lambda: clients.cache().ping(),
        # sync: one queue whatever the venues (submission has one queue per venue)
        "tasks": lambda: clients.tasks().get_queue(name=cfg.queue_path(cfg.sync_queue), timeout=2),
    }
