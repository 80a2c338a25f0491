"""Market data across venues: each venue's terms (symbols, ticks, lots, fees; kept a minute per process) and
order books, fetched from every venue in parallel and cached briefly in Redis (shared by every instance) so a
burst of routing decisions costs one fetch per venue.

``routes()`` is the venues x symbols table of ``GET /api/v1/routes``; ``snapshot()`` is what the router and the
algorithms plan with, and ``traded_volume()`` / ``volume_profile()`` read the public tape and candles that POV
and VWAP follow.
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

from shared.adapters.protocol import Candles, OrderBook, PublicTrade, PublicTrades, VenueCallError, VenueInfo
from shared.domain.algorithms.slippage import bound_for
from shared.domain.market import Book, Level, MarketSnapshot, VenueTerms
from shared.domain.orders import Side
from shared.domain.tca import Quote

logger = logging.getLogger(__name__)
_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="market-data")
INFO_TTL_S = 60.0
MAX_TAPE_PAGES = 20  # a window busier than 20 pages of 1000 trades is counted as far as they reach
CANDLE_MS = 60_000
MAX_PROFILES = 1_000


def terms_of(venue: str, info: VenueInfo, symbol: str) -> VenueTerms | None:
    """The domain's view of one symbol's rules in a venue's ``GET /info`` answer (None: not listed)."""
    s = next((s for s in info.symbols if s.symbol == symbol), None)
    if s is None:
        return None
    return VenueTerms(venue=venue, symbol=symbol, tick_size=s.tick_size, lot_size=s.lot_size,
                      min_quantity=s.min_quantity, min_notional=s.min_notional, maker_fee=s.maker_fee,
                      taker_fee=s.taker_fee, max_quantity=s.max_quantity, max_notional=s.max_notional,
                      price_significant_digits=s.price_significant_digits,
                      quantity_significant_digits=s.quantity_significant_digits)


class MarketVenue(Protocol):
    def info(self) -> VenueInfo: ...

    def book(self, symbol: str, depth: int = 20) -> OrderBook: ...

    def trades(self, symbol: str, since_ms: int, until_ms: int | None = None, limit: int = 1000) -> PublicTrades: ...

    def candles(self, symbol: str, since_ms: int, timeframe: str = "1m", limit: int = 500) -> Candles: ...


class BookCache(Protocol):
    def get(self, venue: str, symbol: str, depth: int) -> OrderBook | None: ...

    def put(self, book: OrderBook, depth: int) -> None: ...


@dataclass
class MarketData:
    venues: Mapping[str, MarketVenue]
    books_cache: BookCache | None = None
    clock: Callable[[], int] = lambda: time.time_ns() // 1_000_000
    _info: dict[str, tuple[float, VenueInfo]] = field(default_factory=dict)
    # Learned volume profiles: history before an order began does not change, so each is fetched once.
    _profiles: dict[tuple[str, str, int, int], tuple[Decimal, ...] | None] = field(default_factory=dict)
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
        return terms_of(venue, self.info(venue), symbol)

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

    def _each(self, work: Callable[[str], Any], failed: dict[str, str] | None = None) -> dict[str, Any]:
        """Run `work(venue)` for every venue in parallel; a venue that fails is left out (logged, and named
        with its error in `failed` when given)."""
        futures = {name: _pool.submit(work, name) for name in self.venues}
        out: dict[str, Any] = {}
        for name, fut in futures.items():
            try:
                out[name] = fut.result(timeout=10)
            except (VenueCallError, TimeoutError) as exc:
                logger.warning("market data from %s unavailable: %s", name, exc)
                if failed is not None:
                    failed[name] = str(exc) or type(exc).__name__
        return out

    def snapshot(self, symbol: str, depth: int = 50, venues: set[str] | None = None,
                 failed: dict[str, str] | None = None) -> MarketSnapshot:
        """Books and terms of every venue listing `symbol` (or of `venues`), fetched in parallel; the venues
        that could not be asked go into `failed` (name: error) when given."""

        def one(venue: str) -> tuple[VenueTerms, Book] | None:
            if venues is not None and venue not in venues:
                return None
            terms = self.terms(venue, symbol)
            if terms is None:
                return None
            ob = self.book(venue, symbol, depth)
            return terms, to_book(ob)

        found = {k: v for k, v in self._each(one, failed).items() if v is not None}
        return MarketSnapshot(at_ms=self.clock(), books={k: b for k, (_, b) in found.items()},
                              terms={k: t for k, (t, _) in found.items()})

    def tape(self, venue: str, symbol: str, since_ms: int, until_ms: int) -> list[PublicTrade]:
        """Every public trade on `venue` in [since_ms, until_ms], oldest first, each once, paging through the
        adapter's answers (at most ``MAX_TAPE_PAGES``). Raises VenueCallError."""
        trades: dict[str, PublicTrade] = {}
        start = since_ms
        for _ in range(MAX_TAPE_PAGES):
            page = self.venues[venue].trades(symbol, start, until_ms)
            for t in page.trades:
                trades.setdefault(t.trade_id, t)
            if page.complete or not page.trades:
                break
            start = page.trades[-1].timestamp_ms  # inclusive: trades already seen are skipped
        return list(trades.values())

    def traded_volume(self, venue: str, symbol: str, since_ms: int, until_ms: int) -> Decimal | None:
        """Base quantity the whole market traded on `venue` in [since_ms, until_ms] (our own fills included:
        participation is our share of all of it); None when the venue's tape is unavailable."""
        try:
            return sum((t.quantity for t in self.tape(venue, symbol, since_ms, until_ms)), Decimal(0))
        except VenueCallError as exc:
            logger.warning("public trades from %s unavailable: %s", venue, exc)
            return None

    def volume_profile(self, venue: str, symbol: str, start_ms: int, duration_ms: int) -> tuple[Decimal, ...] | None:
        """The market's volume per whole minute over the `duration_ms` (at least two minutes) before `start_ms`
        on `venue`: the shape VWAP follows when the order names no profile (recent volume, mapped onto the
        order's window), fetched once per process and window. None when fewer than two of those minutes traded
        (too little to learn a shape from) or the venue's candles are unavailable."""
        minutes = max(2, -(-duration_ms // CANDLE_MS))
        end = start_ms // CANDLE_MS * CANDLE_MS  # whole minutes only: the one under way is not over
        first = end - minutes * CANDLE_MS
        key = (venue, symbol, first, minutes)
        with self._lock:
            if key in self._profiles:
                return self._profiles[key]
        try:
            bars = self.venues[venue].candles(symbol, first, limit=min(minutes, 1000)).candles
        except VenueCallError as exc:  # not remembered: the next slice asks again
            logger.warning("candles from %s unavailable: %s", venue, exc)
            return None
        volume = {c.open_ms: c.volume for c in bars if first <= c.open_ms < end}
        profile = tuple(volume.get(first + i * CANDLE_MS, Decimal(0)) for i in range(minutes))
        learned = profile if sum(1 for v in profile if v > 0) >= 2 else None
        with self._lock:
            if len(self._profiles) >= MAX_PROFILES:
                self._profiles.pop(next(iter(self._profiles)))  # the oldest
            self._profiles[key] = learned
        return learned

    def routes(self, health: Mapping[str, dict[str, Any]],
               failed: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Venues x symbols: fees, lot and tick, status, latency, top of book; the venues that could not be
        asked go into `failed` (name: error) when given."""

        def one(venue: str) -> list[dict[str, Any]]:
            rows = []
            for s in self.info(venue).symbols:
                top = to_book(self.book(venue, s.symbol, 1))
                bid, ask, mid = top.best_bid, top.best_ask, top.mid
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

        return [row for rows in self._each(one, failed).values() for row in rows]


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


def _touch_of(market: MarketData, venue: str, symbol: str) -> Quote | None:
    book = market.book(venue, symbol, 1)
    if not book.bids or not book.asks:
        return None
    return Quote(book.bids[0].price, book.asks[0].price)


def touch(market: MarketData, outcome: Callable[[str, str], None] = lambda venue, outcome: None,
          wait_s: float = 2.0) -> Callable[[str, str], Quote | None]:
    """The venue's touch now (through the book cache, at most its TTL old), or None (a failed read, an empty
    side, no answer within `wait_s`: a slow venue must not hold TCA's workers; ``outcome`` is told, logged at
    warning). Never raises."""

    def read(venue: str, symbol: str) -> Quote | None:
        try:
            quote = _pool.submit(_touch_of, market, venue, symbol).result(timeout=wait_s)
        except TimeoutError:
            outcome(venue, "stale")
            logger.warning("market data unavailable", extra={"fields": {"venue": venue, "outcome": "stale",
                                                                         "wait_s": wait_s}})
            return None
        except Exception as exc:  # VenueCallError, an unknown venue
            outcome(venue, "failed")
            logger.warning("market data unavailable", extra={"fields": {"venue": venue, "outcome": "failed",
                                                                         "error": repr(exc)}})
            return None
        outcome(venue, "ok" if quote is not None else "failed")
        if quote is None:
            logger.warning("market data unavailable", extra={"fields": {"venue": venue, "outcome": "failed",
                                                                         "error": "an empty side"}})
        return quote

    return read


def quote_ahead(market: MarketData, outcome: Callable[[str, str], None] = lambda venue, outcome: None,
                ) -> Callable[[str, str, float], Callable[[], Quote | None]]:
    """``OrderService.quote_ahead``: start reading the venue's touch (through the short-lived book cache) and
    answer a getter that waits at most `wait_s` for it. No touch (a failed read, an empty side, too slow):
    None, logged at debug; TCA flags what it then cannot compute. Never raises: TCA must not stop an order.
    ``outcome(venue, "ok" | "stale" | "failed")`` is told how each read went (too slow is stale)."""

    def ahead(venue: str, symbol: str, wait_s: float) -> Callable[[], Quote | None]:
        future = _pool.submit(_touch_of, market, venue, symbol)

        def get() -> Quote | None:
            try:
                quote = future.result(timeout=wait_s)
            except TimeoutError:
                outcome(venue, "stale")
                logger.warning("market data unavailable", extra={"fields": {"venue": venue, "outcome": "stale",
                                                                             "wait_s": wait_s}})
                return None
            except Exception as exc:  # VenueCallError, an unknown venue: no touch, the order goes on
                outcome(venue, "failed")
                logger.warning("market data unavailable", extra={"fields": {"venue": venue, "outcome": "failed",
                                                                             "error": repr(exc)}})
                return None
            outcome(venue, "ok" if quote is not None else "failed")
            return quote

        return get

    return ahead


def to_book(ob: OrderBook) -> Book:
    return Book(venue=ob.venue, symbol=ob.symbol, bids=tuple(Level(lv.price, lv.quantity) for lv in ob.bids),
                asks=tuple(Level(lv.price, lv.quantity) for lv in ob.asks), at_ms=ob.timestamp_ms or 0)
