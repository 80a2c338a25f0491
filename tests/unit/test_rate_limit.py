"""The per-key rate limit holds when Redis is down: each instance counts the key itself, and says so."""

import redis

from shared.infra.rate_limit import RateLimiter


class Pipeline:
    def __init__(self, store: dict, down: bool) -> None:
        self.store, self.down, self.ops = store, down, []

    def incr(self, name):
        self.ops.append(name)

    def expire(self, name, seconds):
        pass

    def execute(self):
        if self.down:
            raise redis.ConnectionError("Redis is down")
        name = self.ops[0]
        self.store[name] = self.store.get(name, 0) + 1
        return [self.store[name], True]


class Cache:
    def __init__(self) -> None:
        self.store: dict = {}
        self.down = False

    def pipeline(self, transaction=False):
        return Pipeline(self.store, self.down)


def limiter(cache, now, reports):
    return RateLimiter(lambda: cache, lambda: 3, lambda: now[0], lambda use, exc: reports.append(use))


def test_the_limit_is_shared_through_redis():
    cache, now, reports = Cache(), [100.0], []
    a, b = limiter(cache, now, reports), limiter(cache, now, reports)  # two instances
    assert [a.allow(b"k"), b.allow(b"k"), a.allow(b"k"), b.allow(b"k")] == [True, True, True, False]
    assert a.allow(b"other")  # per key
    now[0] = 101.0
    assert a.allow(b"k")  # a new second
    assert reports == []


def test_with_redis_down_each_instance_still_limits_and_reports_it():
    cache, now, reports = Cache(), [100.0], []
    cache.down = True
    a = limiter(cache, now, reports)
    assert [a.allow(b"k") for _ in range(4)] == [True, True, True, False]
    assert reports == ["rate_limit"] * 4
    now[0] = 101.0
    assert a.allow(b"k")
    assert len(a._local) == 1  # only the current second is kept
