"""The adapter registry: each configured adapter's health and its shared call statistics.

Health checks run in parallel; statistics (latency p50/p99, error rate, last success, dead man's switch) come
from Redis, so every instance of the service reports the same. Without Redis the health part still answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shared.infra.venues import AdapterStats, VenueCallError, VenueClient

_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="adapters")


def _one(client: VenueClient, stats: AdapterStats | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": client.venue, "url": client.base_url}
    try:
        h = client.health()
        entry.update(healthy=h.status == "ok", exchange_id=h.exchange_id, venue_latency_ms=h.venue_latency_ms,
                     error=h.error)
    except VenueCallError as err:
        entry.update(healthy=False, error=str(err))
    if stats is not None:
        try:
            entry["stats"] = stats.snapshot(client.venue)
        except Exception as exc:  # statistics are best effort: Redis may be down
            entry["stats"] = None
            entry["stats_error"] = f"{type(exc).__name__}: {exc}"
    return entry


def registry(clients: Mapping[str, VenueClient], stats: AdapterStats | None) -> list[dict[str, Any]]:
    futures = [_pool.submit(_one, c, stats) for c in clients.values()]
    return [f.result() for f in futures]


def health_probes(clients: Mapping[str, VenueClient]) -> dict[str, Any]:
    """One health probe per adapter, named adapter:NAME."""

    def probe(client: VenueClient) -> None:
        h = client.health()
        if h.status != "ok":
            raise RuntimeError(h.error or "unavailable")

    return {f"adapter:{name}": (lambda c=c: probe(c)) for name, c in clients.items()}
