"""Execution algorithms: pure planners that turn a parent order and a market snapshot into child orders.

``base`` holds the vocabulary (``Algorithm``, ``ParentView``, ``ChildIntent``, ``SliceDecision``, child ids,
``parse_params``, ``planner_for``); one module per algorithm (``twap``, ``vwap``, ``iceberg``, ``pov``); the
SmartRouter as an algorithm, ``SmartPlanner``, lives here (its allocation is ``shared.domain.router``), so the
router stays free of the algorithm layer.

SmartPlanner: each call is one round; it allocates what is available (quantity - filled - working) across every
venue in the snapshot with ``router.allocate``, bounded by the tighter of the limit price and the slippage
collar (from the consolidated mid), and sends one IOC limit child per venue at that venue's computed limit price.
After ``rounds`` calls (3 unless set; ``interval_s`` apart, 1 s unless set) the order's time in force decides
(``SmartPlanner.rest``): an IOC/FOK or market parent is done and the rest is cancelled; a limit parent good
beyond the moment (GTC, GTD, DAY) leaves the rest resting at its limit price (inside the slippage collar) on
the venue with the lowest maker fee until it fills, the parent is cancelled, the venue ends it, or the parent
expires (its working children are then cancelled).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

from shared.domain.algorithms import iceberg, pov, twap, vwap
from shared.domain.algorithms.base import (
    Algorithm,
    ChildIntent,
    FOLLOW_UP_MS,
    NO_NEEDS,
    InvalidParams,
    MarketNeeds,
    ParentView,
    Planner,
    SliceDecision,
    WorkingChild,
    child,
    child_client_order_id,
    child_size,
    done,
    effective_limit,
    DirectParams,
    parse_params,
    planner_for,
    rest_child_id,
)
from shared.domain.algorithms.params import AlgorithmParams, CollarBps, LimitPrice, whole
from shared.domain.algorithms.slippage import DEFAULT_COLLAR_BPS, Bound, bound_for, collar
from shared.domain.market import Book, MarketSnapshot, consolidated_mid
from shared.domain.router import allocate, best_single_venue, consolidated_optimum

__all__ = [
    "Algorithm", "ChildIntent", "InvalidParams", "MarketNeeds", "ParentView", "Planner", "SliceDecision",
    "SmartParams", "SmartPlanner", "WorkingChild", "child_client_order_id", "parse_params", "planner_for",
]


class SmartParams(AlgorithmParams):
    """The SmartRouter's algorithm_params: `rounds` of IOC children across every venue, `interval_s` apart."""

    rounds: whole(1, 10, description="routing rounds before the rest rests or is cancelled") = 3
    interval_s: whole(1, 60, description="seconds between rounds") = 1
    limit_price: LimitPrice | None = None
    default_collar_bps: CollarBps = DEFAULT_COLLAR_BPS


REST_CHECK_MS = 5_000  # how often a parent with a resting remainder looks at its children


class SmartPlanner:
    name = "smart"
    needs = NO_NEEDS

    def __init__(self, params: SmartParams) -> None:
        self.params = params

    def plan(self, parent: ParentView, market: MarketSnapshot, now_ms: int) -> SliceDecision:
        p = self.params
        if parent.unfilled <= 0:
            return done(parent)
        if parent.end_ms is not None and now_ms >= parent.end_ms:
            return done(parent, f"the order ended with {parent.unfilled} unfilled",
                        cancel=tuple(c.client_order_id for c in parent.working_children))
        if parent.slice_index >= p.rounds:
            return self.rest(parent, market, now_ms)
        if now_ms < parent.start_ms:
            return SliceDecision(next_at_ms=parent.start_ms)
        follow_up = now_ms + p.interval_s * 1000
        last = parent.slice_index + 1 >= p.rounds or (parent.end_ms is not None and follow_up >= parent.end_ms)
        next_at = None if last else follow_up
        tag = f"slice {parent.slice_index}"
        if parent.available <= 0:
            return SliceDecision(next_at_ms=next_at)
        books = {v: b for v, b in market.books.items() if v in market.terms}
        limit, bound = self.worst_price(parent, books)
        if limit is None:
            return SliceDecision(next_at_ms=next_at,
                                 skipped=(f"{tag}: no mid price to bound slippage by, and no limit price",))
        alloc = allocate(parent.side, parent.available, books, market.terms, limit_price=limit)
        estimate = None
        if parent.slice_index == 0:  # TCA: what one venue alone, and the ideal split, would have paid
            single = best_single_venue(parent.side, parent.available, books, market.terms, limit_price=limit)
            ideal = consolidated_optimum(parent.side, parent.available, books, market.terms, limit_price=limit)
            estimate = (single.expected_average_price, ideal.expected_average_price)
        children = tuple(child(parent, n, s.venue, s.quantity, s.limit_price, taker=True)
                         for n, s in enumerate(alloc.slices))
        skipped: tuple[str, ...] = ()
        if alloc.unallocated > 0:
            within = f"within {limit}" + (f" (slippage collar {bound.bps} bps from the {bound.source} "
                                          f"{bound.reference})" if bound is not None else "")
            skipped = (f"{tag}: {alloc.unallocated} of {parent.available} not routed: the books show too little "
                       f"{within}, or it is below the venues' lots and minimums",)
        if next_at is None and parent.may_rest:
            next_at = follow_up  # one more call after the last round: it leaves the rest working
        return SliceDecision(children=children, next_at_ms=next_at, skipped=skipped, router=estimate)

    def worst_price(self, parent: ParentView, books: Mapping[str, Book]) -> tuple[Decimal | None, Bound | None]:
        """The worst price any child may use: the tightest of the limit prices and the slippage collar (from the
        consolidated mid of `books`), and that bound (None without a mid)."""
        bound = bound_for(parent.max_slippage_bps, parent.arrival_mid, consolidated_mid(books),
                          self.params.default_collar_bps)
        limit = effective_limit(parent.side, parent.limit_price, self.params.limit_price)
        if bound is not None:
            limit = effective_limit(parent.side, limit, collar(parent.side, bound.reference, bound.bps))
        return limit, bound

    def rest(self, parent: ParentView, market: MarketSnapshot, now_ms: int) -> SliceDecision:
        """After the rounds: an IOC/FOK or market parent is done (the rest is cancelled). A limit parent good
        beyond the moment waits for its last IOC children's answers, then leaves what is unfilled resting at its
        limit price (inside the collar) on the venue with the lowest maker fee, and looks at it every
        ``REST_CHECK_MS``. That child has one id, so it is placed once: if the venue rejects or cancels it, the
        parent is done (the reason is on the child)."""
        tag = f"slice {parent.slice_index}"
        if not parent.may_rest:
            return done(parent, f"{self.params.rounds} rounds done; {parent.unfilled} unfilled is cancelled (an "
                                f"{'IOC/FOK' if parent.limit_price is not None else 'order without a limit price'} "
                                f"does not rest)")
        rest_id = rest_child_id(parent.client_order_id)
        if rest_id in parent.ended_children:
            return done(parent, f"the resting remainder ended at the venue; {parent.unfilled} unfilled")
        working = {c.client_order_id for c in parent.working_children}
        wait = REST_CHECK_MS if rest_id in working else FOLLOW_UP_MS  # the rest, or the last IOCs' answers
        next_at = now_ms + wait
        if parent.end_ms is not None and next_at >= parent.end_ms:
            next_at = max(parent.end_ms, now_ms + 1)
        if working or parent.available <= 0:
            return SliceDecision(next_at_ms=next_at)
        price, _ = self.worst_price(parent, market.books)
        assert price is not None  # may_rest: there is a limit price
        why = f"no venue lists {parent.symbol}"
        for _, venue in sorted((t.maker_fee, v) for v, t in market.terms.items()):
            terms = market.terms[venue]
            at = terms.round_price(parent.side, price)
            q, why = child_size(parent.available, parent.available, terms, at)
            if q > 0:
                resting = replace(child(parent, 0, venue, q, at, taker=False), client_order_id=rest_id)
                return SliceDecision(children=(resting,), next_at_ms=now_ms + REST_CHECK_MS,
                                     skipped=(f"{tag}: {q} left resting at {at} on {venue}",))
        return done(parent, f"the rest cannot rest: {why}")


# Each algorithm's parameters: the model validates them and is their schema (the OpenAPI document's).
PARAMS: dict[Algorithm, type[AlgorithmParams]] = {
    Algorithm.DIRECT: DirectParams,
    Algorithm.TWAP: twap.TwapParams,
    Algorithm.VWAP: vwap.VwapParams,
    Algorithm.ICEBERG: iceberg.IcebergParams,
    Algorithm.POV: pov.PovParams,
    Algorithm.SMART: SmartParams,
}

PLANNERS: dict[Algorithm, Callable[[Any], Planner]] = {
    Algorithm.TWAP: twap.TwapPlanner,
    Algorithm.VWAP: vwap.VwapPlanner,
    Algorithm.ICEBERG: iceberg.IcebergPlanner,
    Algorithm.POV: pov.PovPlanner,
    Algorithm.SMART: SmartPlanner,
}
