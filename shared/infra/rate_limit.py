"""The per-key request rate limit: a fixed one-second window per key, counted in Redis so every instance shares it.

When Redis cannot be reached the limit is not switched off: each instance counts the key's requests itself (the
same limit, per instance, so N instances let at most N times through) until Redis answers again, and the outage is
reported (a warning and a metric, through `report`). A limit that fails open would let one runaway client flood
the venues exactly when the service is degraded.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any

import redis


class RateLimiter:
    def __init__(self, cache: Callable[[], Any], limit: Callable[[], int], clock_s: Callable[[], float],
                 report: Callable[[str, BaseException], None]) -> None:
        self._cache, self._limit, self._clock_s, self._report = cache, limit, clock_s, report
        self._local: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def allow(self, key: bytes) -> bool:
        """Count one request of `key` in the current second; False when it is over the limit."""
        window = int(self._clock_s())
        digest = hashlib.sha256(key).hexdigest()[:16]
        try:
            pipe = self._cache().pipeline(transaction=False)
            pipe.incr(f"ratelimit:{digest}:{window}")
            pipe.expire(f"ratelimit:{digest}:{window}", 2)
            count = pipe.execute()[0]
        except redis.RedisError as exc:
            self._report("rate_limit", exc)  # loud; and the limit holds per instance meanwhile
            count = self._count_here(digest, window)
        return count <= self._limit()

    def _count_here(self, digest: str, window: int) -> int:
        with self._lock:
            for stale in [k for k in self._local if k[1] < window]:
                del self._local[stale]  # only the current second is kept: bounded by the keys in use
            count = self._local.get((digest, window), 0) + 1
            self._local[(digest, window)] = count
            return count
