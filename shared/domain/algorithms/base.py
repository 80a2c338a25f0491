"""Execution algorithms, the shared vocabulary: which algorithms exist, what a planner sees of its parent order,
what it decides (child orders to send, children to cancel, when to be called next), deterministic child ids,
parameter validation, and the sizing and pricing rules every single-venue algorithm follows.

Pure: no I/O and no clock (``now_ms`` is a parameter, epoch milliseconds); the only randomness is a
``random.Random`` seeded from a hash of the parent's client order id and what it is for (``rng_for``), so the
same inputs always give the same decision. Prices and quantities are Decimal.

How a planner is driven: the engine calls ``plan(parent, market, now_ms)`` at ``next_at_ms`` (and may call it
earlier), cancels ``cancel`` first, sends ``children``, and then advances ``parent.slice_index`` by one, so
each decision's children get their own ids. A planner never sends more than ``parent.available``
(quantity - filled - working): quantity being cancelled is still working until the venue confirms, so it is
re-sent by a later call, never in the same decision. A child too small for the venue is not sent; its quantity
stays with the parent and is picked up by a later slice (schedules are cumulative, so nothing is lost).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from shared.domain.algorithms.params import AlgorithmParams, InvalidParams
from shared.domain.algorithms.slippage import Bound
from shared.domain.market import ZERO, Book, MarketSnapshot, VenueTerms, round_quantity
from shared.domain.orders import OrderType, Side, TimeInForce, digest

FOLLOW_UP_MS = 1_000  # how soon to call again after cancelling (to re-send what the cancel frees)


class Algorithm(StrEnum):
    DIRECT = "direct"  # no planning: the order goes to its venue as it is
    TWAP = "twap"
    VWAP = "vwap"
    ICEBERG = "iceberg"
    POV = "pov"
    SMART = "smart"  # the SmartRouter: split across venues by all-in price


@dataclass(frozen=True)
class ChildIntent:
    client_order_id: str
    venue: str
    side: Side
    quantity: Decimal
    order_type: OrderType  # LIMIT (every child planned here has a price) or MARKET
    price: Decimal | None
    time_in_force: TimeInForce  # IOC (taker) or GTC (resting)
    post_only: bool
    slice_index: int


class WorkingChild(NamedTuple):
    """An open child of the parent (a plain tuple: client_order_id, price, remaining, placed_at_ms)."""

    client_order_id: str
    price: Decimal | None
    remaining: Decimal
    placed_at_ms: int


@dataclass(frozen=True)
class ParentView:
    """What a planner sees of the parent order."""

    client_order_id: str
    side: Side
    symbol: str
    quantity: Decimal
    filled_quantity: Decimal
    working_quantity: Decimal  # open children, not yet filled
    limit_price: Decimal | None
    start_ms: int
    end_ms: int | None
    slice_index: int  # decisions acted on so far; this decision's children carry it
    arrival_mid: Decimal | None = None
    max_slippage_bps: Decimal | None = None
    venue: str | None = None  # the venue of single-venue algorithms (the order's exchange)
    working_children: tuple[WorkingChild, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)  # the raw algorithm_params, as stored
    time_in_force: TimeInForce = TimeInForce.GTC  # the parent's: may what the algorithm leaves rest, or not
    ended_children: frozenset[str] = frozenset()  # client order ids of children the venue is done with
    planned_so_far: Decimal = ZERO  # the cumulative quantity the previous decision planned (POV adds to it)

    @property
    def may_rest(self) -> bool:
        """A limit order good beyond the moment (GTC, GTD, DAY): what is left may keep working."""
        return self.limit_price is not None and self.time_in_force not in (TimeInForce.IOC, TimeInForce.FOK)

    def __post_init__(self) -> None:
        if any(not isinstance(c, WorkingChild) for c in self.working_children):  # plain tuples are welcome
            object.__setattr__(self, "working_children", tuple(WorkingChild(*c) for c in self.working_children))

    @property
    def unfilled(self) -> Decimal:
        return max(ZERO, self.quantity - self.filled_quantity)

    @property
    def available(self) -> Decimal:
        """What may be sent now: quantity - filled - working."""
        return max(ZERO, self.quantity - self.filled_quantity - self.working_quantity)


@dataclass(frozen=True)
class SliceDecision:
    children: tuple[ChildIntent, ...] = ()
    cancel: tuple[str, ...] = ()  # child client order ids to cancel first (maker re-price, iceberg refresh)
    next_at_ms: int | None = None  # None: the algorithm is done once its working children finish
    skipped: tuple[str, ...] = ()  # why a child was not sent, for people
    # TCA: the cumulative quantity this decision aims to have done (TWAP, VWAP, POV), and the SmartRouter's
    # pre-trade estimates (average price of the best single venue, of the consolidated optimum)
    planned: Decimal | None = None
    router: tuple[Decimal | None, Decimal | None] | None = None


@dataclass(frozen=True)
class MarketNeeds:
    """What a planner reads beyond books and terms, so the engine fetches only that."""

    traded_volume: bool = False  # MarketSnapshot.traded_volume: the market's volume since the previous slice
    # MarketSnapshot.volume_profile: the shape of the market's volume over this many ms before the order began
    profile_window_ms: int | None = None


NO_NEEDS = MarketNeeds()


class Planner(Protocol):
    @property
    def needs(self) -> MarketNeeds: ...

    def plan(self, parent: ParentView, market: MarketSnapshot, now_ms: int) -> SliceDecision: ...


# ---- identity and randomness ----------------------------------------------------------------------------


def child_client_order_id(parent_client_order_id: str, slice_index: int, n: int) -> str:
    """The n-th child of a slice: deterministic (a retried decision re-sends the same ids), 32 characters."""
    return f"alg-{digest('child', parent_client_order_id, str(slice_index), str(n))[:28]}"


def rest_child_id(parent_client_order_id: str) -> str:
    """The one child an algorithm leaves resting when it is done (one id: it can only ever be placed once)."""
    return f"alg-{digest('rest', parent_client_order_id)[:28]}"


def rng_for(parent_client_order_id: str, *parts: object) -> random.Random:
    """A generator seeded from the parent and what it is for (e.g. "size", 3): same inputs, same numbers."""
    return random.Random(int(digest("rng", parent_client_order_id, *map(str, parts))[:16], 16))


def jitter(parent_client_order_id: str, pct: Decimal, *parts: object) -> Decimal:
    """A deterministic fraction in [-pct/100, +pct/100], in steps of 0.0001."""
    if pct <= 0:
        return ZERO
    span = int(pct * 100)
    return Decimal(rng_for(parent_client_order_id, *parts).randint(-span, span)) / 10_000


# ---- parameters -----------------------------------------------------------------------------------------
def parse_params(algorithm: Algorithm | str, params: Mapping[str, Any] | None) -> Any:
    """Validate `params` for `algorithm`: the algorithm's params model (``PARAMS``), or InvalidParams."""
    from shared.domain.algorithms import PARAMS  # the package imports every algorithm (no import cycle)

    try:
        algo = Algorithm(algorithm)
    except ValueError:
        raise InvalidParams([("algorithm", f"must be one of {', '.join(a.value for a in Algorithm)}")]) from None
    return PARAMS[algo].parse(params)


def planner_for(algorithm: Algorithm | str, params: Mapping[str, Any] | None) -> Planner:
    """A planner for `algorithm` with validated `params` (InvalidParams if they are not valid). ``direct`` has
    no planner: such an order goes to its venue as it is (ValueError)."""
    from shared.domain.algorithms import PLANNERS

    parsed = parse_params(algorithm, params)
    algo = Algorithm(algorithm)
    if algo is Algorithm.DIRECT:
        raise ValueError("algorithm direct: not planned; the order goes to its venue as it is")
    return PLANNERS[algo](parsed)


class DirectParams(AlgorithmParams):
    """``direct`` takes no parameters: the order goes to its venue as it is."""



# ---- the rules every single-venue algorithm follows -----------------------------------------------------
def venue_market(parent: ParentView, market: MarketSnapshot) -> tuple[Book, VenueTerms] | str:
    """The book and terms of the parent's venue, or why there are none."""
    if parent.venue is None:
        return "no venue: this algorithm trades on the order's exchange, and none is set"
    book, terms = market.books.get(parent.venue), market.terms.get(parent.venue)
    if book is None or terms is None:
        return f"no market data for {parent.symbol} on {parent.venue}"
    return book, terms


def effective_limit(side: Side, *limits: Decimal | None) -> Decimal | None:
    """The tightest of the given limit prices (a buy's lowest, a sell's highest)."""
    given = [p for p in limits if p is not None]
    if not given:
        return None
    return min(given) if side is Side.BUY else max(given)


def beyond(side: Side, price: Decimal, limit: Decimal) -> bool:
    """`price` is worse for `side` than `limit` (a buy's higher, a sell's lower)."""
    return price > limit if side is Side.BUY else price < limit


def _touch_name(side: Side) -> str:
    return "best ask" if side is Side.BUY else "best bid"


def taker_price(side: Side, book: Book, terms: VenueTerms, limit: Decimal | None,
                bound: Bound | None) -> tuple[Decimal | None, str | None]:
    """The IOC limit of a taker child: the worst price the order accepts, i.e. the slippage collar, or the limit
    price where that is tighter. An IOC trades at the resting orders' own prices, so a limit at the bound costs
    nothing while the book holds still, and still fills when the touch moves (or another child takes it) between
    the snapshot and the venue, where a limit at the snapshot's touch would expire empty. None and the reason when
    the far touch is already beyond either."""
    far = book.far_side(side)
    if not far:
        return None, f"no {'asks' if side is Side.BUY else 'bids'} on {book.venue}"
    if limit is None and bound is None:
        return None, f"no mid price on {book.venue} to bound slippage by, and no limit price"
    touch = far[0].price
    if limit is not None:
        limit = terms.round_price(side, limit)
        if beyond(side, touch, limit):
            return None, f"{_touch_name(side)} {touch} on {book.venue} is beyond the limit price {limit}"
    cap = None
    if bound is not None:
        cap = bound.price(side, terms.tick_size)
        if beyond(side, touch, cap):
            return None, (f"{_touch_name(side)} {touch} on {book.venue} is beyond the slippage collar: "
                          f"{bound.describe(side, cap)}")
    return effective_limit(side, limit, cap), None


def maker_price(side: Side, book: Book, terms: VenueTerms, limit: Decimal | None,
                bound: Bound | None) -> tuple[Decimal | None, str | None]:
    """The price of a post-only child: the near touch, capped at the limit price and the slippage collar, and
    kept one tick off the far touch so it cannot cross."""
    near, far = book.near_side(side), book.far_side(side)
    if near:
        price = near[0].price
    elif far:
        price = far[0].price - terms.tick_size if side is Side.BUY else far[0].price + terms.tick_size
    else:
        return None, f"{book.venue} shows no book for {book.symbol}"
    if limit is not None and beyond(side, price, limit := terms.round_price(side, limit)):
        price = limit
    if bound is not None:
        cap = bound.price(side, terms.tick_size)
        if beyond(side, price, cap):
            price = cap
    if far:
        passive = far[0].price - terms.tick_size if side is Side.BUY else far[0].price + terms.tick_size
        if beyond(side, price, passive):
            price = passive
    if price <= 0:
        return None, f"no valid passive price on {book.venue}"
    return price, None


def child_size(want: Decimal, available: Decimal, terms: VenueTerms, price: Decimal,
               cap: Decimal | None = None) -> tuple[Decimal, str | None]:
    """The quantity of a child meant to be `want`: at most `available` (and `cap`), down to the venue's lot.
    Zero and the reason when that is below the venue's minimum quantity or notional (the caller carries it into
    a later slice); enlarged to all of `available` when what it would leave could never be sent on its own (as
    long as that stays within `cap`)."""
    lot = terms.lot_size
    limit = available if cap is None else min(available, cap)
    q = round_quantity(min(want, limit), lot)
    if q <= 0:
        return ZERO, f"{want.normalize():f} rounds to nothing at {terms.venue}'s lot size {lot}"
    reason = terms.shortfall(q, price)
    if reason is not None:
        return ZERO, reason
    everything = round_quantity(available, lot)
    left = everything - q
    if left > 0 and terms.shortfall(left, price) is not None and (cap is None or everything <= cap):
        q = everything
    return q, None


def child(parent: ParentView, n: int, venue: str, quantity: Decimal, price: Decimal, *, taker: bool,
          post_only: bool = False) -> ChildIntent:
    return ChildIntent(
        client_order_id=child_client_order_id(parent.client_order_id, parent.slice_index, n), venue=venue,
        side=parent.side, quantity=quantity, order_type=OrderType.LIMIT, price=price,
        time_in_force=TimeInForce.IOC if taker else TimeInForce.GTC, post_only=post_only,
        slice_index=parent.slice_index)


def done(parent: ParentView, reason: str | None = None, cancel: tuple[str, ...] = ()) -> SliceDecision:
    return SliceDecision(cancel=cancel, skipped=(f"slice {parent.slice_index}: {reason}",) if reason else ())
