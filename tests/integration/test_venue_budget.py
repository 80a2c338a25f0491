"""A venue's request budget shared by two adapter "instances" (two clients, two RedisRequestBudget objects) in a
real Redis of this test's own (redis-server on a free port; needs no stack): what one spends the other cannot, the
bucket refills at its rate, and concurrent takers never get more than the bucket holds (the Lua script is atomic).
``.venv/bin/python -m pytest tests/integration/test_venue_budget.py``."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from shared.adapters.ccxt_venue import AdapterError
from shared.adapters.protocol import ErrorCode
from shared.infra.cache import RedisRequestBudget
from tests.unit.test_venue_budget import venue as unit_venue


@pytest.fixture(scope="module")
def redis_port() -> Iterator[int]:
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is needed (Debian package redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        client = redis.Redis(port=port, socket_timeout=2)
        deadline = time.monotonic() + 60
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def instance(port: int, venue: str, rate_per_s: float = 10.0) -> RedisRequestBudget:
    """One adapter instance's view: its own connection, the venue's one budget."""
    return RedisRequestBudget(redis.Redis(port=port, socket_timeout=2), venue, rate_per_s, burst_s=1.0)


def test_two_instances_share_one_budget(redis_port):
    a, b = instance(redis_port, "v1"), instance(redis_port, "v1")
    now = 1_700_000_000_000
    assert [a.take(1, now) for _ in range(6)] == [0] * 6
    assert [b.take(1, now) for _ in range(4)] == [0] * 4  # the bucket held 10 in all
    assert b.take(1, now) == 100 and a.take(1, now) == 100  # 10/s: one unit in 100 ms, for either of them
    assert a.take(2, now + 100) == 100  # 100 ms gave one unit back, not two
    assert b.take(1, now + 100) == 0
    assert a.take(1, now + 100) == 100


def test_another_venue_has_its_own_budget(redis_port):
    a, other = instance(redis_port, "v2"), instance(redis_port, "v3")
    now = 1_700_000_000_000
    assert all(a.take(1, now) == 0 for _ in range(10)) and a.take(1, now) > 0
    assert other.take(1, now) == 0


def test_concurrent_takers_never_get_more_than_the_bucket_holds(redis_port):
    takers = [instance(redis_port, "v4", rate_per_s=50) for _ in range(2)]
    now = 1_700_000_000_000  # one instant: no refill, so exactly the capacity (50) may be granted
    granted = []
    lock = threading.Lock()

    def work(budget: RedisRequestBudget) -> None:
        for _ in range(60):
            if budget.take(1, now) == 0:
                with lock:
                    granted.append(1)

    threads = [threading.Thread(target=work, args=(t,)) for t in takers for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sum(granted) == 50


def test_a_second_adapter_instance_is_refused_what_the_first_spent(redis_port):
    # Two CcxtVenue objects (two instances of one venue's adapter) on one Redis budget of 2 units a second.
    # Both at one instant (their clocks stand still, waits included): no refill, only what the bucket holds.
    first, sent_first, _ = unit_venue(instance(redis_port, "v5", rate_per_s=2))
    second, sent_second, _ = unit_venue(instance(redis_port, "v5", rate_per_s=2))
    first._sleep = second._sleep = lambda seconds: None
    calls = 0
    while True:  # the first instance spends the bucket
        try:
            first.get(venue_order_id="12", symbol="BTC/USDT")
            calls += 1
        except AdapterError as err:
            assert err.code is ErrorCode.RATE_LIMITED
            break
        assert calls < 1000, "the budget never ran out"
    assert calls >= 1 and len(sent_first) == calls
    with pytest.raises(AdapterError) as err:
        second.get(venue_order_id="12", symbol="BTC/USDT")
    assert err.value.code is ErrorCode.RATE_LIMITED and "not sent" in str(err.value)
    assert sent_second == []
