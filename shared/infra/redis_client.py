"""How every deployable connects to Redis (Memorystore in the cloud), and how a Redis failure is made visible.

TLS. Memorystore with in-transit encryption (``transit_encryption_mode = SERVER_AUTHENTICATION``) serves TLS on
port 6378 with a certificate signed by the instance's own certificate authority (Terraform reads it from the
instance's ``server_ca_certs`` and mounts it in every function as the file REDIS_CA_FILE names). REDIS_URL
reaches the instance by its private IP, which that certificate does not name: redis-py >= 6 (we pin 8.1.0)
checks the hostname by default (``ssl_check_hostname=True``), so a connection that verifies the CA and checks
the hostname fails with "IP address mismatch" on every command. With REDIS_CA_FILE set, the client therefore
requires a certificate chain to exactly that CA (``ssl_cert_reqs=required``: a certificate from any other CA,
the public ones included, is refused) and does not compare the name: the CA is this instance's alone, so a
certificate it signed can only be this instance's, which is what the hostname check would otherwise establish.
Without REDIS_CA_FILE a ``rediss://`` URL is verified against the system's CAs with the hostname checked (a
Redis with a public certificate for its name). REDIS_CA_FILE with a plain ``redis://`` URL is refused at
start-up (shared/infra/config.py): a CA was meant to be used, so the connection must not silently be clear text.

Failures. Callers that keep working without Redis (the API's rate limit, metrics, adapter statistics, caches)
call ``report_unavailable(use, exc)``: one WARNING line ``redis unavailable`` with ``redis_use`` and ``error``
(a log-based metric and an alert in terraform/monitoring.tf count it), at most once per use every
``REPORT_EVERY_S`` per process, so an outage is loud without flooding the logs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

logger = logging.getLogger("redis")

REPORT_EVERY_S = 10.0


def tls_options(url: str, ca_file: str | None) -> dict[str, Any]:
    """The SSL keyword arguments of a Redis client for REDIS_URL and REDIS_CA_FILE (see the module docstring)."""
    if not url.startswith("rediss://"):
        if ca_file:
            raise ValueError("REDIS_CA_FILE is set but REDIS_URL is not rediss:// (TLS)")
        return {}
    if ca_file:
        return {"ssl_cert_reqs": "required", "ssl_ca_certs": ca_file, "ssl_check_hostname": False}
    return {"ssl_cert_reqs": "required", "ssl_check_hostname": True}


def connect(url: str, ca_file: str | None = None, **options: Any) -> redis.Redis:
    """A Redis client (connects on first use) with the TLS options of ``tls_options``; ``options`` are the
    caller's timeouts and decoding."""
    return redis.Redis.from_url(url, **tls_options(url, ca_file), **options)


class FailureReporter:
    """Logs ``redis unavailable`` at most once per use every ``every_s`` (clock injected for tests)."""

    def __init__(self, every_s: float = REPORT_EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._every_s = every_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, use: str, exc: BaseException) -> bool:
        """Report a failure of Redis for ``use``; True when a line was written."""
        now = self._clock()
        with self._lock:
            last = self._last.get(use)
            if last is not None and now - last < self._every_s:
                self._suppressed[use] = self._suppressed.get(use, 0) + 1
                return False
            self._last[use] = now
            suppressed = self._suppressed.pop(use, 0)
        logger.warning("redis unavailable", extra={"fields": {
            "redis_use": use, "error": f"{type(exc).__name__}: {exc}"[:300], "suppressed": suppressed}})
        return True


report_unavailable = FailureReporter()
