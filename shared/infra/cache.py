"""Small Redis-backed stores shared by every instance of a deployable (Memorystore in the cloud).

Callers treat Redis as a cache: each store raises on a Redis failure and the caller decides what the safe
fallback is (see shared/adapters/ccxt_venue.py).
"""

from __future__ import annotations

import json

import redis

from shared.adapters.protocol import DeadMansSwitch

PLACED_TTL_S = 7 * 24 * 3600  # longer than any order lives unattended
MARKETS_TTL_S = 3600


class RedisPlacedIds:
    """Client order ids an adapter has sent (or is sending) to its venue."""

    def __init__(self, client: redis.Redis, venue: str) -> None:
        self._r = client
        self._prefix = f"adapter:{venue}:placed:"

    def mark(self, client_order_id: str) -> bool:
        return bool(self._r.set(self._prefix + client_order_id, "1", nx=True, ex=PLACED_TTL_S))


class RedisMarketsCache:
    """A venue's ccxt markets, so a cold start does not download them again."""

    def __init__(self, client: redis.Redis, venue: str, ttl_s: int = MARKETS_TTL_S) -> None:
        self._r = client
        self._key = f"adapter:{venue}:markets"
        self._ttl = ttl_s

    def get(self) -> dict | None:
        raw = self._r.get(self._key)
        return json.loads(raw) if raw else None

    def put(self, markets: dict) -> None:
        self._r.set(self._key, json.dumps(markets, default=str), ex=self._ttl)


class RedisSwitchStore:
    """The adapter-side dead man's switch of a venue: armed by one instance, watched by all."""

    def __init__(self, client: redis.Redis, venue: str) -> None:
        self._r = client
        self._key = f"adapter:{venue}:switch"

    def load(self) -> DeadMansSwitch | None:
        raw = self._r.get(self._key)
        return DeadMansSwitch.model_validate_json(raw) if raw else None

    def save(self, state: DeadMansSwitch) -> None:
        self._r.set(self._key, state.model_dump_json())
