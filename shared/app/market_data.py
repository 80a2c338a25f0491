"""Market data across venues: each venue's terms (symbols, ticks, lots, fees; kept a minute per process) and
order books, fetched from every venue in parallel and cached briefly in Redis (shared by every instance) so a
burst of routing decisions costs one fetch per venue.

``routes()`` is the venues x symbols table of ``GET /api/v1/routes``; ``snapshot()`` is what the router and the
algorithms plan with.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from shared.adapters.protocol import OrderBook, VenueCallError, VenueInfo
from shared.domain.algorithms.slippage import bound_for
from shared.domain.market import Book, Level, MarketSnapshot, VenueTerms
from shared.domain.orders import Side

logger = logging.getLogger(__name__)
_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="market-data")
INFO_TTL_S = 60.0


class MarketVenue(Protocol):
    def info(self) -> VenueInfo: ...

    def book(self, symbol: str, depth: int = 20) -> OrderBook: ...


class BookCache(Protocol):
    def get(self, venue: str, symbol: str, depth: int) -> OrderBook | None: ...

    def put(self, book: OrderBook, depth: int) -> None: ...


@dataclass
class MarketData:
    venues: Mapping[str, MarketVenue]
    books_cache: BookCache | None = None
    clock: Callable[[], int] = lambda: time.time_ns() // 1_000_000
    _info: dict[str, tuple[float, VenueInfo]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def info(self, venue: str) -> VenueInfo:
        with self._lock:
            hit = self._info.get(venue)
        if hit and time.monotonic() - hit[0] < INFO_TTL_S:
            return hit[1]
        info = self.venues[venue].info()
        with self._lock:
            self._info[venue] = (time.monotonic(), info)
        return info

    def terms(self, venue: str, symbol: str) -> VenueTerms | None:
        s = next((s for s in self.info(venue).symbols if s.symbol == symbol), None)
        if s is None:
            return None
        return VenueTerms(venue=venue, symbol=symbol, tick_size=s.tick_size, lot_size=s.lot_size,
                          min_quantity=s.min_quantity, min_notional=s.min_notional, maker_fee=s.maker_fee,
                          taker_fee=s.taker_fee)

    def book(self, venue: str, symbol: str, depth: int) -> OrderBook:
        if self.books_cache is not None:
            try:
                cached = self.books_cache.get(venue, symbol, depth)
                if cached is not None:
                    return cached
            except Exception as exc:
                logger.debug("book cache unavailable: %s", exc)
        book = self.venues[venue].book(symbol, depth)
        if self.books_cache is not None:
            try:
                self.books_cache.put(book, depth)
            except Exception as exc:
                logger.debug("book cache unavailable: %s", exc)
        return book

    def _each(self, work: Callable[[str], Any]) -> dict[str, Any]:
        """Run `work(venue)` for every venue in parallel; a venue that fails is left out (and logged)."""
        futures = {name: _pool.submit(work, name) for name in self.venues}
        out: dict[str, Any] = {}
        for name, fut in futures.items():
            try:
                out[name] = fut.result(timeout=10)
            except (VenueCallError, TimeoutError) as exc:
                logger.warning("market data from %s unavailable: %s", name, exc)
        return out

    def snapshot(self, symbol: str, depth: int = 50, venues: set[str] | None = None) -> MarketSnapshot:
        """Books and terms of every venue listing `symbol` (or of `venues`), fetched in parallel."""

        def one(venue: str) -> tuple[VenueTerms, Book] | None:
            if venues is not None and venue not in venues:
                return None
            terms = self.terms(venue, symbol)
            if terms is None:
                return None
            ob = self.book(venue, symbol, depth)
            return terms, to_book(ob)

        found = {k: v for k, v in self._each(one).items() if v is not None}
        return MarketSnapshot(at_ms=self.clock(), books={k: b for k, (_, b) in found.items()},
                              terms={k: t for k, (t, _) in found.items()})

    def routes(self, health: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """Venues x symbols: fees, lot and tick, status, latency, top of book."""

        def one(venue: str) -> list[dict[str, Any]]:
            rows = []
            for s in self.info(venue).symbols:
                top = self.book(venue, s.symbol, 1)
                bid = top.bids[0].price if top.bids else None
                ask = top.asks[0].price if top.asks else None
                mid = (bid + ask) / 2 if bid is not None and ask is not None else None
                rows.append({
                    "venue": venue, "symbol": s.symbol, "active": s.active, "maker_fee": s.maker_fee,
                    "taker_fee": s.taker_fee, "tick_size": s.tick_size, "lot_size": s.lot_size,
                    "min_quantity": s.min_quantity, "min_notional": s.min_notional,
                    "healthy": health.get(venue, {}).get("healthy"),
                    "latency_ms_p50": ((health.get(venue, {}).get("stats") or {}).get("latency_ms") or {}).get("p50"),
                    "best_bid": bid, "best_ask": ask,
                    "spread_bps": ((ask - bid) / mid * 10_000).quantize(Decimal("0.0001")) if mid else None,
                })
            return rows

        return [row for rows in self._each(one).values() for row in rows]


def market_collar(market: MarketData, default_bps: Decimal) -> Callable[[Side, str, str, Decimal | None],
                                                                       tuple[Decimal, Decimal] | None]:
    """The slippage collar of a market order: (IOC limit price, mid now), or None without a book to bound it by.
    Its own max_slippage_bps if it has one, else the default collar. The book is fetched fresh (not from the
    routing cache): a stale mid would move the bound."""

    def collar_for(side: Side, venue: str, symbol: str, max_bps: Decimal | None) -> tuple[Decimal, Decimal] | None:
        terms = market.terms(venue, symbol)
        book = to_book(market.venues[venue].book(symbol, 1))
        bound = bound_for(max_bps, None, book.mid, default_bps)
        if terms is None or bound is None:
            return None
        return bound.price(side, terms.tick_size), bound.reference

    return collar_for


def to_book(ob: OrderBook) -> Book:
    return Book(venue=ob.venue, symbol=ob.symbol, bids=tuple(Level(lv.price, lv.quantity) for lv in ob.bids),
                asks=tuple(Level(lv.price, lv.quantity) for lv in ob.asks), at_ms=ob.timestamp_ms or 0)
