"""The composition root, once per process: validated settings, structured logging, and the order service
wired to the real infrastructure (Firestore, Redis, Pub/Sub, Cloud Tasks, the venue adapters).

Importing this module fails fast with a ConfigError naming the bad variable, so a misconfigured function
never starts serving. Clients are built on first use and then live as long as the process.
"""

from __future__ import annotations

import functools
import logging
import time

from shared.app.algorithms import ParentOrders
from shared.app.dms import DeadMansSwitchService
from shared.app.market_data import MarketData, market_collar, quote_ahead, touch
from shared.app.orders import OrderService
from shared.app.tca import TcaService
from shared.app.tca_pipeline import TcaPipeline, samples_of
from shared.app.venue_rules import VenueRules
from shared.infra import clients, log
from shared.infra.bus import PubSubEvents, PubSubRows
from shared.infra.cache import RedisBooks, RedisOrderCache, RedisSwitchCache
from shared.infra.config import settings
from shared.infra.dms_store import FirestoreSwitches
from shared.infra.metrics import RedisMetrics
from shared.infra.scheduler import TasksScheduler
from shared.infra.store import FirestoreOrderStore
from shared.infra.tca_store import FirestoreTcaStore

SETTINGS = settings()
log.configure(SETTINGS.log_level)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@functools.cache
def metrics() -> RedisMetrics:
    return RedisMetrics(clients.cache(), frozenset(SETTINGS.metric_strategies))


@functools.cache
def order_service() -> OrderService:
    m = metrics()
    return OrderService(
        store=FirestoreOrderStore(clients.firestore_db(), usage=_usage("orders")),
        cache=RedisOrderCache(clients.cache()),
        events=PubSubEvents(clients.publisher(), SETTINGS),
        scheduler=TasksScheduler(clients.tasks(), SETTINGS),
        venues=clients.venues(),
        metrics=m,
        clock=now_ms,
        max_retries=SETTINGS.max_retries,
        execution_timeout_ms=int(SETTINGS.execution_timeout * 1000),
        halt_reason=lambda strategy_id: dms_service().halt_reason(strategy_id),
        market_collar=market_collar(market_data(), SETTINGS.default_collar_bps),
        venue_fit=VenueRules(market_data().info),  # 422 at intake for what the venue cannot take as it is
        reconcile_shards=SETTINGS.reconcile_shards,
        venue_symbols=_venue_symbols,
        quote_ahead=quote_ahead(market_data(), _market_data_outcome),
    )


def _venue_symbols(venue: str) -> list[str]:
    """The symbols a venue's adapter lists (cached a minute by MarketData); none when it cannot be asked."""
    try:
        return [s.symbol for s in market_data().info(venue).symbols]
    except Exception:  # noqa: BLE001 (the orphan search then scans the symbols it knows)
        logging.getLogger(__name__).warning("no symbol list from %s for the orphan search", venue, exc_info=True)
        return []


@functools.cache
def parent_orders() -> ParentOrders:
    return ParentOrders(orders=order_service(), market=market_data(), scheduler=order_service().scheduler,
                        clock=now_ms)


@functools.cache
def tca_service() -> TcaService:
    docs = tca_store()
    return TcaService(store=tca_orders(), market=market_data(), clock=now_ms,
                      samples=lambda order_ids, root_id: samples_of(docs.get_many(order_ids), root_id))


@functools.cache
def tca_orders() -> FirestoreOrderStore:
    """The order store as TCA reads it: its reads counted as TCA's (caller="tca"), apart from the order path's."""
    return FirestoreOrderStore(clients.firestore_db(), usage=_usage("tca"))


@functools.cache
def tca_store() -> FirestoreTcaStore:
    return FirestoreTcaStore(clients.firestore_db(), usage=_usage("tca"))


def _usage(caller: str):
    m = metrics()
    return lambda kind, n: m.count(f"firestore_{kind}", n, caller=caller)


@functools.cache
def tca_pipeline() -> TcaPipeline:
    return TcaPipeline(orders=tca_orders(), docs=tca_store(), service=tca_service(),
                       touch=touch(market_data(), _market_data_outcome), scheduler=order_service().scheduler,
                       publish=PubSubRows(clients.publisher(), SETTINGS).publish, metrics=metrics(), clock=now_ms)


def _market_data_outcome(venue: str, outcome: str) -> None:
    metrics().count("market_data_reads", venue=venue, outcome=outcome)


@functools.cache
def market_data() -> MarketData:
    return MarketData(venues=clients.venues(), books_cache=RedisBooks(clients.cache()), clock=now_ms)


@functools.cache
def dms_service() -> DeadMansSwitchService:
    return DeadMansSwitchService(
        switches=FirestoreSwitches(clients.firestore_db()),
        cache=RedisSwitchCache(clients.cache()),
        orders=order_service(),
        venues=clients.venues(),
        events=order_service().events,
        clock=now_ms,
        venue_timeout_ms=SETTINGS.dms_venue_timeout_ms,
        heartbeat_max_age_ms=SETTINGS.heartbeat_max_age_ms,
        latch=SETTINGS.dms_latch,
    )
