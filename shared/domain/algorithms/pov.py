"""POV (percentage of volume): trade a fixed share of what the market trades, until the order is filled.

Every ``interval_s`` (5 unless set) a slice sends ``target_rate`` times the market volume traded since the
previous slice (``MarketSnapshot.traded_volume``), minus what is still working, at most what is available, as a
taker IOC child (priced like TWAP's: at the slippage collar, or the limit price where that is tighter). Volume
is not owed later (POV follows the market as it goes, it does not catch up). A share below the venue's minimum
order is raised to that minimum (else a thin market, or a small rate, would never trade at all),
and a child that would leave a remainder too small ever to send on its own takes that remainder too: a slice
may exceed the rate by less than one minimum order. A child below ``min_child`` is not sent. Runs until filled,
or until the parent's ``end_ms``.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from shared.domain.algorithms.base import (
    MarketNeeds,
    ParentView,
    SliceDecision,
    child,
    child_size,
    done,
    effective_limit,
    taker_price,
    venue_market,
)
from shared.domain.algorithms.params import AlgorithmParams, CollarBps, LimitPrice, number, whole
from shared.domain.algorithms.slippage import DEFAULT_COLLAR_BPS, bound_for
from shared.domain.market import ZERO, MarketSnapshot


class PovParams(AlgorithmParams):
    """POV's algorithm_params: every interval_s, target_rate times the volume the market traded since the
    previous slice."""

    target_rate: number(0, Decimal("0.5"), lo_open=True, description="the share of the market's volume to trade")
    min_child: number(0, description="a child below this is not sent") = ZERO
    limit_price: LimitPrice | None = None
    interval_s: whole(1, 3600, description="seconds between slices") = 5
    default_collar_bps: CollarBps = DEFAULT_COLLAR_BPS


class PovPlanner:
    name = "pov"
    needs = MarketNeeds(traded_volume=True)

    def __init__(self, params: PovParams) -> None:
        self.params = params

    def plan(self, parent: ParentView, market: MarketSnapshot, now_ms: int) -> SliceDecision:
        decision = self._plan(parent, market, now_ms)
        if market.traded_volume is None or now_ms < parent.start_ms or parent.unfilled <= 0:
            return decision
        planned = min(parent.quantity, parent.planned_so_far + self.params.target_rate * market.traded_volume)
        return replace(decision, planned=planned)

    def _plan(self, parent: ParentView, market: MarketSnapshot, now_ms: int) -> SliceDecision:
        p = self.params
        if parent.unfilled <= 0:
            return done(parent)
        end = parent.end_ms
        if end is not None and now_ms >= end:
            return done(parent, f"the order ended with {parent.unfilled} unfilled")
        if now_ms < parent.start_ms:
            return SliceDecision(next_at_ms=parent.start_ms)
        follow_up = now_ms + p.interval_s * 1000
        next_at: int | None = follow_up
        if end is not None and follow_up >= end:
            next_at = end - 1 if end - 1 > now_ms else None
        tag = f"slice {parent.slice_index}"
        vm = venue_market(parent, market)
        if isinstance(vm, str):
            return SliceDecision(next_at_ms=next_at, skipped=(f"{tag}: {vm}",))
        book, terms = vm
        if market.traded_volume is None:
            return SliceDecision(next_at_ms=next_at, skipped=(f"{tag}: market volume since the last slice unknown",))
        want = p.target_rate * market.traded_volume - parent.working_quantity
        if want <= 0 or parent.available <= 0:
            return SliceDecision(next_at_ms=next_at)
        limit = effective_limit(parent.side, parent.limit_price, p.limit_price)
        bound = bound_for(parent.max_slippage_bps, parent.arrival_mid, book.mid, p.default_collar_bps)
        price, why = taker_price(parent.side, book, terms, limit, bound)
        if price is None:
            return SliceDecision(next_at_ms=next_at, skipped=(f"{tag}: {why}",))
        q, why = child_size(max(want, terms.min_order(price)), parent.available, terms, price)
        if q <= 0:
            return SliceDecision(next_at_ms=next_at, skipped=(f"{tag}: {why}",))
        if q < p.min_child and q < terms.round_quantity(parent.available):
            return SliceDecision(next_at_ms=next_at, skipped=(f"{tag}: {q} is below min_child {p.min_child}",))
        return SliceDecision(children=(child(parent, 0, book.venue, q, price, taker=True),), next_at_ms=next_at)
