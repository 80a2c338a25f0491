"""The ``venue_fit`` of ``OrderService``: an order's terms against its venue's rules, at intake.

The rules (lot, tick, minimum and maximum quantity and notional) come from the adapter's ``GET /info``, through
``MarketData.info`` (kept a minute per process). ``shared.domain.market.venue_fit_problems`` says what an order
breaks; a REST order that breaks anything is answered 422 naming the field and the rule, a signal gets a
``rejected`` event.

What is not checked here, and why:
- Algorithm parents (and ``smart`` orders): their children are sized and priced by the service itself, rounded
  passively to each child's venue, and each child passes through ``OrderService.create`` (so this check) when it
  is spawned.
- The notional of a market order: it has no price at intake. It goes out as an IOC limit at its slippage collar,
  and the adapter checks that price's notional before sending.

Fail open: when the venue's rules cannot be fetched, the last rules seen are used; with none (or when they are
older than ``STALE_S``), the order is accepted unchecked, and the adapter, which checks the same rules before
sending, refuses a misfit as a final ``invalid_order`` (the order ends ``rejected`` with the reason). Refusing every
order while an adapter is briefly unreachable would turn a venue blip into an intake outage; the adapter's check
keeps the unchecked path safe. A failed fetch is not retried for ``RETRY_S``, so intake never waits on a dead
adapter more than once per that interval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.adapters.protocol import VenueCallError, VenueInfo
from shared.app.market_data import terms_of
from shared.domain.market import venue_fit_problems
from shared.domain.orders import SMART, Order

logger = logging.getLogger(__name__)

RETRY_S = 5.0  # after a failed fetch, how long intake goes without asking that venue again
STALE_S = 3600.0  # how long the last rules seen stand in for rules that cannot be fetched


@dataclass
class VenueRules:
    """Callable as ``venue_fit``: the (field, problem) pairs an order breaks at its venue."""

    info: Callable[[str], VenueInfo]  # the venue's rules (MarketData.info: cached per process)
    monotonic: Callable[[], float] = time.monotonic
    _last: dict[str, tuple[float, VenueInfo]] = field(default_factory=dict)
    _failed_until: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, order: Order) -> list[tuple[str, str]]:
        if order.is_parent or order.exchange == SMART:
            return []  # checked child by child, at spawn
        info = self._info(order.exchange)
        if info is None:
            return []  # fail open (see the module doc)
        terms = terms_of(order.exchange, info, order.symbol)
        if terms is None:
            return [("symbol", f"{order.exchange} does not list {order.symbol}")]
        return venue_fit_problems(terms, side=order.side, quantity=order.quantity, price=order.price,
                                  stop_price=order.stop_price)

    def _info(self, venue: str) -> VenueInfo | None:
        now = self.monotonic()
        with self._lock:
            last = self._last.get(venue)
            failed_until = self._failed_until.get(venue, 0.0)
        if now < failed_until:
            return self._stale(last, now)
        try:
            info = self.info(venue)
        except (VenueCallError, KeyError) as exc:  # KeyError: no such venue (validation has said so already)
            logger.warning("venue rules of %s unavailable (%s): orders go unchecked at intake; the adapter still "
                           "checks them before sending", venue, exc)
            with self._lock:
                self._failed_until[venue] = now + RETRY_S
            return self._stale(last, now)
        with self._lock:
            self._last[venue] = (now, info)
            self._failed_until.pop(venue, None)
        return info

    @staticmethod
    def _stale(last: tuple[float, VenueInfo] | None, now: float) -> VenueInfo | None:
        if last is not None and now - last[0] < STALE_S:
            return last[1]
        return None
