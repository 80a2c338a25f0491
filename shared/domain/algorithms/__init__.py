"""Execution algorithms: pure planners that turn a parent order and a market snapshot into child orders.

``base`` holds the vocabulary (``Algorithm``, ``ParentView``, ``ChildIntent``, ``SliceDecision``, child ids,
``parse_params``, ``planner_for``); one module per algorithm (``twap``, ``vwap``, ``iceberg``, ``pov``); the
SmartRouter as an algorithm, ``SmartPlanner``, lives here (its allocation is ``shared.domain.router``), so the
router stays free of the algorithm layer.

SmartPlanner: each call is one round; it allocates what is available (quantity - filled - working) across every
venue in the snapshot with ``router.allocate``, bounded by the tighter of the limit price and the slippage
collar (from the consolidated mid), and sends one IOC limit child per venue at that venue's computed limit price.
After ``rounds`` calls (3 unless set; ``interval_s`` apart, 1 s unless set) it is done: whatever is still
unfilled is the caller's to leave working or cancel, per the order's time in force.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from shared.domain.algorithms import iceberg, pov, twap, vwap
from shared.domain.algorithms.base import (
    Algorithm,
    ChildIntent,
    InvalidParams,
    ParamReader,
    ParentView,
    Planner,
    SliceDecision,
    WorkingChild,
    child,
    child_client_order_id,
    done,
    effective_limit,
    parse_direct,
    parse_params,
    planner_for,
)
from shared.domain.algorithms.slippage import DEFAULT_COLLAR_BPS, bound_for, collar
from shared.domain.market import MarketSnapshot, consolidated_mid
from shared.domain.router import allocate

__all__ = [
    "Algorithm", "ChildIntent", "InvalidParams", "ParentView", "Planner", "SliceDecision", "SmartParams",
    "SmartPlanner", "WorkingChild", "child_client_order_id", "parse_params", "planner_for",
]


@dataclass(frozen=True)
class SmartParams:
    rounds: int = 3
    interval_s: int = 1
    limit_price: Decimal | None = None
    default_collar_bps: Decimal = DEFAULT_COLLAR_BPS


def parse_smart(params: Mapping[str, Any]) -> SmartParams:
    r = ParamReader(params, ("rounds", "interval_s", "limit_price", "default_collar_bps"))
    rounds = r.whole("rounds", 3, lo=1, hi=10)
    interval = r.whole("interval_s", 1, lo=1, hi=60)
    limit = r.optional_number("limit_price", lo=0, lo_open=True)
    collar_bps = r.number("default_collar_bps", DEFAULT_COLLAR_BPS, lo=0, hi=10_000, lo_open=True)
    r.done()
    return SmartParams(rounds=rounds, interval_s=interval, limit_price=limit, default_collar_bps=collar_bps)


class SmartPlanner:
    name = "smart"

    def __init__(self, params: SmartParams) -> None:
        self.params = params

    def plan(self, parent: ParentView, market: MarketSnapshot, now_ms: int) -> SliceDecision:
        p = self.params
        if parent.unfilled <= 0:
            return done(parent)
        if parent.end_ms is not None and now_ms >= parent.end_ms:
            return done(parent, f"the order ended with {parent.unfilled} unfilled")
        if parent.slice_index >= p.rounds:
            return done(parent, f"{p.rounds} rounds done; {parent.unfilled} unfilled is left to the order's "
                                f"time in force")
        if now_ms < parent.start_ms:
            return SliceDecision(next_at_ms=parent.start_ms)
        follow_up = now_ms + p.interval_s * 1000
        last = parent.slice_index + 1 >= p.rounds or (parent.end_ms is not None and follow_up >= parent.end_ms)
        next_at = None if last else follow_up
        tag = f"slice {parent.slice_index}"
        if parent.available <= 0:
            return SliceDecision(next_at_ms=next_at)
        books = {v: b for v, b in market.books.items() if v in market.terms}
        bound = bound_for(parent.max_slippage_bps, parent.arrival_mid, consolidated_mid(books),
                          p.default_collar_bps)
        limit = effective_limit(parent.side, parent.limit_price, p.limit_price)
        if bound is not None:
            limit = effective_limit(parent.side, limit, collar(parent.side, bound.reference, bound.bps))
        elif limit is None:
            return SliceDecision(next_at_ms=next_at,
                                 skipped=(f"{tag}: no mid price to bound slippage by, and no limit price",))
        alloc = allocate(parent.side, parent.available, books, market.terms, limit_price=limit)
        children = tuple(child(parent, n, s.venue, s.quantity, s.limit_price, taker=True)
                         for n, s in enumerate(alloc.slices))
        skipped: tuple[str, ...] = ()
        if alloc.unallocated > 0:
            within = f"within {limit}" + (f" (slippage collar {bound.bps} bps from the {bound.source} "
                                          f"{bound.reference})" if bound is not None else "")
            skipped = (f"{tag}: {alloc.unallocated} of {parent.available} not routed: the books show too little "
                       f"{within}, or it is below the venues' lots and minimums",)
        return SliceDecision(children=children, next_at_ms=next_at, skipped=skipped)


PARSERS: dict[Algorithm, Callable[[Mapping[str, Any]], Any]] = {
    Algorithm.DIRECT: parse_direct,
    Algorithm.TWAP: twap.parse,
    Algorithm.VWAP: vwap.parse,
    Algorithm.ICEBERG: iceberg.parse,
    Algorithm.POV: pov.parse,
    Algorithm.SMART: parse_smart,
}

PLANNERS: dict[Algorithm, Callable[[Any], Planner]] = {
    Algorithm.TWAP: twap.TwapPlanner,
    Algorithm.VWAP: vwap.VwapPlanner,
    Algorithm.ICEBERG: iceberg.IcebergPlanner,
    Algorithm.POV: pov.PovPlanner,
    Algorithm.SMART: SmartPlanner,
}
