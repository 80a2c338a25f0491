"""Iceberg: a large order shown a little at a time, resting at a fixed limit price.

One child of about ``display_quantity`` rests at ``limit_price`` (GTC, not post-only: a marketable limit takes
what it can, then rests). Each tranche's size is varied by up to ``size_variance_pct`` percent, deterministically
(seeded from the parent's client order id and the slice number), rounded down to the venue's lot and raised to
the venue's minimum when the display is below it. The next tranche is sent once the previous one has finished
(nothing working); the algorithm is done when the order is filled, or ends at the parent's ``end_ms``.

The price is the tighter of ``limit_price`` and the order's own limit, rounded to the tick passively and capped
at the slippage collar when the tranche is placed. A resting tranche whose price has come to lie beyond the
current bound (the collar moved against it) is cancelled and re-sent, refreshed, by the next call; it is not
otherwise re-priced. The planner asks to be called again every second while a tranche works.
"""

from __future__ import annotations


from shared.domain.algorithms.base import (
    FOLLOW_UP_MS,
    NO_NEEDS,
    ParentView,
    SliceDecision,
    beyond,
    child,
    child_size,
    done,
    effective_limit,
    jitter,
    venue_market,
)
from shared.domain.algorithms.params import AlgorithmParams, CollarBps, number
from shared.domain.algorithms.slippage import DEFAULT_COLLAR_BPS, bound_for
from shared.domain.market import ZERO, MarketSnapshot

CHECK_MS = 1_000


class IcebergParams(AlgorithmParams):
    """Iceberg's algorithm_params: one tranche of about display_quantity rests at limit_price at a time."""

    display_quantity: number(0, lo_open=True, description="the size of each tranche shown")
    size_variance_pct: number(0, 50, description="each tranche's size moved by up to this percent") = ZERO
    limit_price: number(0, lo_open=True, description="where the tranches rest")
    default_collar_bps: CollarBps = DEFAULT_COLLAR_BPS


class IcebergPlanner:
    name = "iceberg"
    needs = NO_NEEDS

    def __init__(self, params: IcebergParams) -> None:
        self.params = params

    def plan(self, parent: ParentView, market: MarketSnapshot, now_ms: int) -> SliceDecision:
        p = self.params
        working = tuple(c.client_order_id for c in parent.working_children)
        if parent.unfilled <= 0:
            return done(parent)
        if parent.end_ms is not None and now_ms >= parent.end_ms:
            return done(parent, f"the order ended with {parent.unfilled} unfilled", working)
        if now_ms < parent.start_ms:
            return SliceDecision(next_at_ms=parent.start_ms)
        tag = f"slice {parent.slice_index}"
        vm = venue_market(parent, market)
        if isinstance(vm, str):
            return SliceDecision(next_at_ms=now_ms + CHECK_MS, skipped=(f"{tag}: {vm}",))
        book, terms = vm
        limit = effective_limit(parent.side, parent.limit_price, p.limit_price) or p.limit_price
        price = terms.round_price(parent.side, limit)
        bound = bound_for(parent.max_slippage_bps, parent.arrival_mid, book.mid, p.default_collar_bps)
        if bound is not None:
            cap = bound.price(parent.side, terms.tick_size)
            if beyond(parent.side, price, cap):
                price = cap
        if parent.working_children or parent.working_quantity > 0:
            stale = tuple(c.client_order_id for c in parent.working_children
                          if c.price is not None and beyond(parent.side, c.price, price))
            return SliceDecision(cancel=stale, next_at_ms=now_ms + (FOLLOW_UP_MS if stale else CHECK_MS))
        size = p.display_quantity * (1 + jitter(parent.client_order_id, p.size_variance_pct, "display",
                                                parent.slice_index))
        q, why = child_size(max(size, terms.min_order(price)), parent.available, terms, price)
        if q <= 0:
            return done(parent, f"{why}; the remaining {parent.unfilled} cannot be sent")
        return SliceDecision(children=(child(parent, 0, book.venue, q, price, taker=False),),
                             next_at_ms=now_ms + CHECK_MS)
