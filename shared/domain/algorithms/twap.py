"""TWAP: an order spread evenly over a time window, and the schedule machinery VWAP shares.

The window runs from the parent's ``start_ms`` for ``duration_s`` (or to the parent's ``end_ms`` if that is
sooner) and is cut into ``slices`` equal buckets (or buckets of about ``interval_s``: the window is divided
into whole buckets). Slice k runs at the start of bucket k; its cumulative target is
``quantity * (k + 1) / slices``, i.e. quantity times the fraction of the window begun, and it sends
``target - (filled + working)``, capped at what is available. So whatever earlier slices did not fill (an IOC
that missed, a child too small for the venue) is carried into later slices automatically.

``randomize_size_pct`` moves each slice's size by up to that percent of an even slice (not the last slice: it
targets everything; later slices correct the drift because targets are cumulative). ``randomize_time_pct``
moves each slice's time by up to that percent of a bucket, never before the previous slice and never into the
catch-up. Both are deterministic (seeded from the parent's client order id and the slice number).

A final catch-up slice runs shortly before the deadline (a quarter bucket before it, at most 10 s, at least
1 s) and sends everything left as a taker child, cancelling resting maker children first; it is retried every
second until the deadline while anything is unfilled. No child is sent at or after the deadline; a call then
cancels what is still resting and ends the algorithm.

Children: ``mode`` taker sends IOC limits at the slippage collar, or at the limit price where that is tighter
(``base.taker_price``: the IOC trades at the book's own prices; its limit is only the worst it accepts); a child
whose far touch is already beyond either is skipped, with the reason. ``mode`` maker sends post-only GTC limits at the
near touch (capped likewise); a resting child older than ``reprice_after_s``, or no longer at the touch, is
cancelled and its quantity re-sent at the new touch by the next call (one second later). Quantities are rounded
down to the venue's lot; a child below the venue's minimums is not sent and its quantity is merged into the next
slice (as NautilusTrader does); a remainder that could never be sent on its own is added to the current child.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Self

from pydantic import model_validator

from shared.domain.algorithms.base import (
    FOLLOW_UP_MS,
    NO_NEEDS,
    ChildIntent,
    MarketNeeds,
    ParentView,
    SliceDecision,
    child,
    child_size,
    done,
    effective_limit,
    jitter,
    maker_price,
    taker_price,
    venue_market,
)
from shared.domain.algorithms.params import AlgorithmParams, CollarBps, LimitPrice, choice, number, problems, whole
from shared.domain.algorithms.slippage import DEFAULT_COLLAR_BPS, bound_for
from shared.domain.market import ZERO, Book, MarketSnapshot, VenueTerms

MODES = ("taker", "maker")
MIN_BUCKET_S = 5
MIN_DURATION_S = 10
DEFAULT_INTERVAL_S = 60
CATCH_UP_MAX_MS = 10_000


# The parameter types TWAP and VWAP share (each rule once).
Duration = whole(MIN_DURATION_S, 86_400, description="the window, seconds (cut short by the order's own expiry)")
Slices = whole(1, 1000, description="the number of slices (give slices or interval_s, not both)")
Interval = whole(MIN_BUCKET_S, 86_400, description="about this many seconds between slices (whole buckets)")
Mode = choice(*MODES, description="taker: IOC limits at the slippage collar; maker: post-only at the near touch, "
                                  "re-priced")
RepriceAfter = whole(1, 3600, description="maker only: a resting child older than this is re-priced")
Percent = number(0, 50)


def _window_problems(params: WindowParams, default_slices: int | None) -> tuple[int, list[tuple[str, str]]]:
    """The number of slices for the window (from slices, interval_s, or the default), and what is wrong with them."""
    duration, slices, interval = params.duration_s, params.slices, params.interval_s
    found: list[tuple[str, str]] = []
    if {"slices", "interval_s"} <= params.model_fields_set:
        found.append(("interval_s", "give slices or interval_s, not both"))
    if slices is not None and duration < slices * MIN_BUCKET_S:
        found.append(("slices", f"must be at most {duration // MIN_BUCKET_S} for duration_s {duration} "
                                f"(slices at least {MIN_BUCKET_S} s apart)"))
        slices = None
    if interval is not None and interval > duration:
        found.append(("interval_s", f"must be at most duration_s ({duration})"))
        interval = None
    if slices is None:
        if interval is None and default_slices is not None:
            slices = min(default_slices, duration // MIN_BUCKET_S)
        else:
            slices = math.ceil(duration / (interval or DEFAULT_INTERVAL_S))
    if "reprice_after_s" in params.model_fields_set and params.mode == "taker":
        found.append(("reprice_after_s", "only used with mode maker"))
    return max(1, slices), found


class WindowParams(AlgorithmParams):
    """What TWAP and VWAP share: a window of duration_s in `slices` (or slices about interval_s apart), children
    as takers or makers, a limit and a collar. After validation `slices` is the number of slices the schedule
    uses."""

    duration_s: Duration
    slices: Slices | None = None
    interval_s: Interval | None = None
    mode: Mode = "taker"
    reprice_after_s: RepriceAfter = 30
    limit_price: LimitPrice | None = None
    default_collar_bps: CollarBps = DEFAULT_COLLAR_BPS

    def default_slices(self) -> int | None:
        """The number of slices when neither slices nor interval_s is given (None: one a minute)."""
        return None

    @model_validator(mode="after")
    def _resolve(self) -> Self:
        slices, found = _window_problems(self, self.default_slices())
        if found:
            raise problems(*found)
        return self.model_copy(update={"slices": slices})


class TwapParams(WindowParams):
    """TWAP's algorithm_params: an even schedule over the window (by default one slice a minute), sizes and times
    optionally jittered."""

    randomize_size_pct: Percent = ZERO
    randomize_time_pct: Percent = ZERO


@dataclass(frozen=True)
class Schedule:
    """Slice times over a window: `n` equal buckets from `start` to `end`, slice times jittered by `time_pct`."""

    parent_cid: str
    start: int
    end: int
    n: int
    time_pct: Decimal = ZERO

    @property
    def bucket_ms(self) -> int:
        return (self.end - self.start) // self.n

    @property
    def catch_up_at(self) -> int:
        return self.end - max(1, min(CATCH_UP_MAX_MS, self.bucket_ms // 4))

    def nominal(self, k: int) -> int:
        return self.start + (self.end - self.start) * k // self.n

    def at(self, k: int) -> int:
        """When slice k runs (k >= n: the catch-up)."""
        if k <= 0:
            return self.start
        if k >= self.n:
            return self.catch_up_at
        t = self.nominal(k)
        if self.time_pct > 0:
            shift = int(jitter(self.parent_cid, self.time_pct, "time", k) * self.bucket_ms)
            t += max(-(self.bucket_ms // 2), min(self.bucket_ms // 2, shift))
        return max(self.start, min(t, self.catch_up_at - 1))

    def bucket(self, now: int) -> int:
        """The last slice whose time has come (now >= start)."""
        k0 = min(self.n - 1, max(0, (now - self.start) * self.n // (self.end - self.start)))
        for k in (k0 + 1, k0, k0 - 1):
            if 0 <= k < self.n and self.at(k) <= now:
                return k
        return 0


class ScheduledPlanner:
    """A cumulative schedule over a window (TWAP; VWAP overrides ``fraction`` and ``cap``)."""

    name = "twap"

    def __init__(self, params: Any) -> None:
        self.params = params

    # ---- what differs between schedules -------------------------------------------------------------------
    @property
    def needs(self) -> MarketNeeds:
        return NO_NEEDS

    def fraction(self, k: int, n: int, market: MarketSnapshot) -> Decimal:
        """The cumulative fraction of the quantity due by the end of bucket k."""
        return Decimal(k + 1) / Decimal(n)

    def cap(self, market: MarketSnapshot) -> tuple[Decimal | None, str | None]:
        """The most one slice may send (None: no cap), and how the cap was set."""
        return None, None

    def size_jitter(self, parent: ParentView, k: int, n: int) -> Decimal:
        return ZERO

    def time_pct(self) -> Decimal:
        return ZERO

    # ---- the schedule -------------------------------------------------------------------------------------
    def schedule(self, parent: ParentView) -> Schedule:
        end = parent.start_ms + self.params.duration_s * 1000
        if parent.end_ms is not None:
            end = min(end, parent.end_ms)
        return Schedule(parent.client_order_id, parent.start_ms, end, self.params.slices, self.time_pct())

    def plan(self, parent: ParentView, market: MarketSnapshot, now_ms: int) -> SliceDecision:
        decision = self._plan(parent, market, now_ms)
        if parent.unfilled <= 0:
            return decision  # done: nothing left to plan
        return replace(decision, planned=self.planned(parent, market, now_ms))

    def planned(self, parent: ParentView, market: MarketSnapshot, now_ms: int) -> Decimal | None:
        """The schedule's cumulative quantity at `now_ms` (all of it from the catch-up on; None before the start)."""
        sched = self.schedule(parent)
        if sched.end <= sched.start or now_ms < sched.start:
            return None
        if now_ms >= sched.catch_up_at:
            return parent.quantity
        return min(parent.quantity, parent.quantity * self.fraction(sched.bucket(now_ms), sched.n, market))

    def _plan(self, parent: ParentView, market: MarketSnapshot, now_ms: int) -> SliceDecision:
        p = self.params
        maker = p.mode == "maker"
        resting = tuple(c.client_order_id for c in parent.working_children) if maker else ()
        if parent.unfilled <= 0:
            return done(parent)
        sched = self.schedule(parent)
        if sched.end <= sched.start:
            return done(parent, "the window is empty (the order ends before it starts)", resting)
        if now_ms < sched.start:
            return SliceDecision(next_at_ms=sched.start)
        if now_ms >= sched.end:
            return done(parent, f"deadline passed with {parent.unfilled} unfilled", resting)
        tag = f"slice {parent.slice_index}"
        vm = venue_market(parent, market)
        catching_up = now_ms >= sched.catch_up_at
        k = sched.bucket(now_ms)
        if isinstance(vm, str):
            retry = now_ms + FOLLOW_UP_MS if catching_up else sched.at(k + 1)
            return SliceDecision(next_at_ms=retry if retry < sched.end else None, skipped=(f"{tag}: {vm}",))
        book, terms = vm
        bound = bound_for(parent.max_slippage_bps, parent.arrival_mid, book.mid, p.default_collar_bps)
        limit = effective_limit(parent.side, parent.limit_price, p.limit_price)
        cap, cap_why = self.cap(market)
        if catching_up:
            return self._catch_up(parent, book, terms, bound, limit, cap, cap_why, now_ms, sched, maker)

        children: list[ChildIntent] = []
        cancel: list[str] = []
        skipped: list[str] = []
        next_at = sched.at(k + 1)
        want = parent.quantity * self.fraction(k, sched.n, market) - parent.filled_quantity - parent.working_quantity
        if k < sched.n - 1:
            want += self.size_jitter(parent, k, sched.n)
        if maker:
            price, why = maker_price(parent.side, book, terms, limit, bound)
            reprice_ms = p.reprice_after_s * 1000
            for c in parent.working_children:
                if (price is not None and c.price != price) or now_ms - c.placed_at_ms >= reprice_ms:
                    cancel.append(c.client_order_id)
                else:
                    next_at = min(next_at, c.placed_at_ms + reprice_ms)
            if cancel:
                next_at = min(next_at, now_ms + FOLLOW_UP_MS)
        else:
            price, why = taker_price(parent.side, book, terms, limit, bound)
        if want > 0:
            if price is None:
                skipped.append(f"{tag}: {why}")
            else:
                q, why = child_size(want, parent.available, terms, price, cap)
                if q > 0:
                    children.append(child(parent, 0, book.venue, q, price, taker=not maker, post_only=maker))
                else:
                    skipped.append(f"{tag}: {why}; carried into the next slice")
                if cap is not None and cap < min(want, parent.available):
                    skipped.append(f"{tag}: capped at {cap} ({cap_why})")
        next_at = max(now_ms + 1, min(next_at, sched.end - 1))
        return SliceDecision(tuple(children), tuple(cancel), next_at, tuple(skipped))

    def _catch_up(self, parent: ParentView, book: Book, terms: VenueTerms, bound: Any, limit: Decimal | None,
                  cap: Decimal | None, cap_why: str | None, now_ms: int, sched: Schedule,
                  maker: bool) -> SliceDecision:
        """Everything left, as a taker child; resting maker children are cancelled first (re-sent next call)."""
        tag = f"slice {parent.slice_index} (catch-up)"
        cancel = tuple(c.client_order_id for c in parent.working_children
                       if maker and c.placed_at_ms < sched.catch_up_at)
        children: list[ChildIntent] = []
        skipped: list[str] = []
        want = parent.available
        if want > 0:
            price, why = taker_price(parent.side, book, terms, limit, bound)
            if price is None:
                skipped.append(f"{tag}: {why}")
            else:
                q, why = child_size(want, want, terms, price, cap)
                if q > 0:
                    children.append(child(parent, 0, book.venue, q, price, taker=True))
                else:
                    skipped.append(f"{tag}: {why}; cannot be sent")
                if cap is not None and cap < want:
                    skipped.append(f"{tag}: capped at {cap} ({cap_why}); the rest stays unfilled")
        follow_up = now_ms + FOLLOW_UP_MS
        return SliceDecision(tuple(children), cancel, follow_up if follow_up < sched.end else None, tuple(skipped))


class TwapPlanner(ScheduledPlanner):
    name = "twap"

    def size_jitter(self, parent: ParentView, k: int, n: int) -> Decimal:
        pct = self.params.randomize_size_pct
        if pct <= 0:
            return ZERO
        return jitter(parent.client_order_id, pct, "size", k) * parent.quantity / n

    def time_pct(self) -> Decimal:
        return self.params.randomize_time_pct
