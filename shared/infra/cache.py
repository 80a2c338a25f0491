"""Small Redis-backed stores shared by every instance of a deployable (Memorystore in the cloud).

The adapter's stores raise on a Redis failure and the caller decides the safe fallback (see
shared/adapters/ccxt_venue.py). ``RedisOrderCache`` swallows failures itself: it only ever makes reads faster,
and the service keeps working (slower) without it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict

import redis

from shared.adapters.protocol import DeadMansSwitch, OrderBook
from shared.domain.dms import Switch
from shared.domain.orders import Order
from shared.infra import redis_client
from shared.infra.codec import order_from_dict, order_to_dict

logger = logging.getLogger(__name__)

PLACED_TTL_S = 7 * 24 * 3600  # longer than any order lives unattended
MARKETS_TTL_S = 3600
ORDER_TTL_S = 24 * 3600


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

    def mark_canceled(self, client_order_ids: list[str], at_ms: int) -> None:
        """The orders the watchdog cancelled when the switch fired (kept a week, as long as a record may ask)."""
        if client_order_ids:
            pipe = self._r.pipeline(transaction=False)
            pipe.hset(self._key + ":canceled", mapping={cid: at_ms for cid in client_order_ids})
            pipe.expire(self._key + ":canceled", PLACED_TTL_S)
            pipe.execute()

    def canceled_by_switch(self, client_order_id: str) -> bool:
        return bool(self._r.hexists(self._key + ":canceled", client_order_id))


class RedisRequestBudget:
    """A venue's request budget shared by every instance of its adapter: a token bucket of ``rate_per_s`` ccxt
    cost units a second holding at most ``burst_s`` seconds of them, refilled and taken in one Lua script (atomic:
    two instances never both spend the last units). Time is the callers' clock (instances' clocks are NTP-kept;
    a caller behind the stored time refills nothing, never a negative amount). A failure is reported
    (``redis unavailable``, use ``venue_budget``) and raised: the adapter decides (shared/adapters/ccxt_venue.py)."""

    def __init__(self, client: redis.Redis, venue: str, rate_per_s: float, burst_s: float = 1.0) -> None:
        if rate_per_s <= 0 or burst_s <= 0:
            raise ValueError("a request budget needs a rate and a burst above 0")
        self._r = client
        self._key = f"adapter:{venue}:budget"
        self._rate_per_ms = rate_per_s / 1000
        self._capacity = rate_per_s * burst_s
        self._take = client.register_script(_TAKE_TOKENS)

    def take(self, cost: float, now_ms: int) -> int:
        cost = min(cost, self._capacity)  # a request dearer than the whole bucket waits for a full one
        ttl_ms = int(self._capacity / self._rate_per_ms) + 60_000
        try:
            return int(self._take(keys=[self._key], args=[repr(self._capacity), repr(self._rate_per_ms), now_ms,
                                                          repr(cost), ttl_ms]))
        except redis.RedisError as exc:
            redis_client.report_unavailable("venue_budget", exc)
            raise


# Refill by the time passed since the last take (capped at the capacity), then take ARGV[4] if there is as much;
# returns 0 (taken) or the milliseconds until there would be (nothing taken).
_TAKE_TOKENS = """
local capacity, rate, now, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil or at == nil then tokens, at = capacity, now end
if now > at then
  tokens = math.min(capacity, tokens + (now - at) * rate)
  at = now
end
local wait = 0
if tokens >= cost then tokens = tokens - cost else wait = math.ceil((cost - tokens) / rate) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return wait
"""


class RedisOrderCache:
    """Order snapshots (read-through, refreshed on every transition; a snapshot is also its request's
    idempotency key, since order ids derive from client order ids) and venue-miss counters."""

    def __init__(self, client: redis.Redis) -> None:
        self._r = client
        self._put = client.register_script(_PUT_NEWER)

    def get(self, order_id: str) -> Order | None:
        try:
            raw = self._r.get(f"order:{order_id}")
        except redis.RedisError as exc:
            logger.debug("order cache unavailable: %s", exc)
            return None
        return order_from_dict(json.loads(raw)) if raw else None

    def put(self, order: Order) -> None:
        """Keep the newest version only: a slow writer never overwrites a newer snapshot."""
        try:
            self._put(keys=[f"order:{order.order_id}"],
                      args=[order.version, json.dumps(order_to_dict(order)), ORDER_TTL_S])
        except redis.RedisError as exc:
            logger.debug("order cache unavailable: %s", exc)

    def count_miss(self, order_id: str) -> int | None:
        try:
            pipe = self._r.pipeline()
            pipe.incr(f"misses:{order_id}")
            pipe.expire(f"misses:{order_id}", ORDER_TTL_S)
            return int(pipe.execute()[0])
        except redis.RedisError:
            return None


# Store the snapshot only if its version is newer than the cached one.
_PUT_NEWER = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local v = cjson.decode(cur)['version']
  if v and tonumber(v) >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


class RedisSwitchCache:
    """A cache of the dead man's switches in front of Firestore (shared/infra/dms_store.py), one key per strategy
    (``dms:switch:{id}``: the switch, or ``none`` for a strategy known to have none) for `ttl_ms`, written
    through on every change. Never raises: a failure is a miss (the caller reads Firestore) or a write left
    undone, which the short TTL bounds."""

    PREFIX = "dms:switch:"
    NONE = "none"

    def __init__(self, client: redis.Redis, ttl_ms: int = 2_000) -> None:
        self._r = client
        self._ttl_ms = ttl_ms

    def get_many(self, strategy_ids: list[str]) -> dict[str, Switch | None]:
        try:
            raws = self._r.mget([self.PREFIX + i for i in strategy_ids])
        except redis.RedisError as exc:
            logger.warning("dead man's switch cache unavailable (%s): reading Firestore", exc)
            return {}
        return {i: None if raw == self.NONE else _switch(json.loads(raw))
                for i, raw in zip(strategy_ids, raws, strict=True) if raw is not None}

    def put_many(self, entries: Mapping[str, Switch | None]) -> None:
        try:
            pipe = self._r.pipeline(transaction=False)
            for i, switch in entries.items():
                pipe.set(self.PREFIX + i, self.NONE if switch is None else json.dumps(asdict(switch)),
                         px=self._ttl_ms)
            pipe.execute()
        except redis.RedisError as exc:
            logger.warning("dead man's switch cache not updated (%s); it expires in %d ms", exc, self._ttl_ms)


def _switch(d: dict) -> Switch:
    return Switch(**d)


class RedisBooks:
    """Order book snapshots for a moment (default 250 ms): one fetch per venue serves a burst of decisions."""

    def __init__(self, client: redis.Redis, ttl_ms: int = 250) -> None:
        self._r = client
        self._ttl_ms = ttl_ms

    def get(self, venue: str, symbol: str, depth: int) -> OrderBook | None:
        raw = self._r.get(f"book:{venue}:{symbol}:{depth}")
        return OrderBook.model_validate_json(raw) if raw else None

    def put(self, book: OrderBook, depth: int) -> None:
        self._r.set(f"book:{book.venue}:{book.symbol}:{depth}", book.model_dump_json(), px=self._ttl_ms)
