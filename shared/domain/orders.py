"""Orders: their fields and validation, the one state-transition table, fill accounting, and the events.

Pure: no I/O and no clock (every time is a parameter, epoch milliseconds). Quantities and prices are Decimal.

An ``Order`` is immutable; every change returns a new one with its ``version`` advanced and, for each status
transition, an ``OrderEvent`` with the next per-order ``sequence`` number. ``TRANSITIONS`` is the only place
that says which status may follow which. It admits what venues really do: a fill that raced a cancel
(CANCELED -> FILLED), a cancel refused because the order had filled (PENDING_CANCEL -> FILLED), a refused
cancel or replace (back to working), stop orders triggering, a venue rejecting a working order (a stop-limit at
its trigger, venue risk). Fills are keyed by venue trade id, so a repeated or reordered fill report changes
nothing twice; a fill is never dropped, even one past the quantity (an overfill is kept and flagged).

The venue is the truth (see docs/order-integrity.md):
- every venue order of an order is a ``Leg`` (the original and each replacement), known from the moment the
  command that creates it is recorded, with the venue's last word on it (open / closed, cumulative filled);
- at most one venue command is in flight per order: its ``Intent`` (place, cancel or replace), whose ``token``
  names the one holder allowed to call the venue for it;
- an order reaches a terminal status only when no intent is in flight, no leg is open or unconfirmed, and each
  leg's fills add up to the venue's cumulative filled quantity.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class TimeInForce(StrEnum):
    """Venues execute GTC, IOC and FOK (``VENUE_TIME_IN_FORCE``); GTD and DAY are the service's own."""

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    GTD = "GTD"  # good till expire_at; the service expires it
    DAY = "DAY"  # good till the end of the UTC day it was created in; the service expires it


VENUE_TIME_IN_FORCE = (TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK)  # what venues execute themselves


class Status(StrEnum):
    NEW = "new"  # validated and recorded; not yet at the venue
    PENDING_SUBMIT = "pending_submit"  # sent to the venue, answer not yet known
    ACCEPTED = "accepted"  # working at the venue
    TRIGGERED = "triggered"  # a stop order whose trigger price was reached
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    PENDING_REPLACE = "pending_replace"
    REJECTED = "rejected"
    EXPIRED = "expired"


S = Status
_WORKING = {S.ACCEPTED, S.TRIGGERED, S.PARTIALLY_FILLED}

# The one transition table: status -> the statuses that may follow it.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.NEW: frozenset({S.PENDING_SUBMIT, S.REJECTED, S.CANCELED, S.EXPIRED}),
    S.PENDING_SUBMIT: frozenset({S.ACCEPTED, S.TRIGGERED, S.PARTIALLY_FILLED, S.FILLED, S.REJECTED, S.CANCELED,
                                 S.EXPIRED, S.PENDING_CANCEL}),
    # A working order may be rejected by the venue (a stop-limit at its trigger, venue risk checks).
    S.ACCEPTED: frozenset({S.TRIGGERED, S.PARTIALLY_FILLED, S.FILLED, S.PENDING_CANCEL, S.PENDING_REPLACE,
                           S.CANCELED, S.EXPIRED, S.REJECTED}),
    S.TRIGGERED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.PENDING_CANCEL, S.PENDING_REPLACE, S.CANCELED,
                            S.EXPIRED, S.REJECTED}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.PENDING_CANCEL, S.PENDING_REPLACE, S.CANCELED,
                                   S.EXPIRED, S.REJECTED}),
    # A cancel in flight: it may succeed, lose the race to fills, be refused (back to working), or the venue may
    # reject the order meanwhile.
    S.PENDING_CANCEL: frozenset({S.CANCELED, S.FILLED, S.PARTIALLY_FILLED, S.ACCEPTED, S.TRIGGERED, S.EXPIRED,
                                 S.PENDING_CANCEL, S.REJECTED}),
    # A replace in flight: done (working again at the new terms), refused (working at the old), or overtaken.
    S.PENDING_REPLACE: frozenset({S.ACCEPTED, S.TRIGGERED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED,
                                  S.PENDING_CANCEL, S.PENDING_REPLACE, S.REJECTED}),
    # Fills reported after the cancel, expiry or rejection (they happened before it at the venue).
    S.CANCELED: frozenset({S.FILLED}),
    S.EXPIRED: frozenset({S.FILLED}),
    S.REJECTED: frozenset({S.FILLED}),
    S.FILLED: frozenset(),
}

TERMINAL = frozenset({S.FILLED, S.CANCELED, S.EXPIRED, S.REJECTED})
WORKING = frozenset(_WORKING | {S.PENDING_SUBMIT, S.PENDING_CANCEL, S.PENDING_REPLACE})
OPEN = frozenset(WORKING | {S.NEW})  # everything not terminal

AVERAGE_PRICE_PLACES = Decimal("1e-12")  # average_price is rounded half-even to 12 decimal places
SMART = "smart"  # the exchange of an order the SmartRouter spreads over every venue
# The client-id and symbol rules, once: the API's schemas and the adapter protocol use these patterns. A client
# order id fits what Binance (the strictest common venue) accepts: at most 36 of these characters.
CLIENT_ORDER_ID_PATTERN = r"^[A-Za-z0-9._:\-]{1,36}$"
SYMBOL_PATTERN = r"^[A-Z0-9]{2,12}/[A-Z0-9]{2,12}$"
CLIENT_ORDER_ID = re.compile(CLIENT_ORDER_ID_PATTERN)
SYMBOL = re.compile(SYMBOL_PATTERN)


class IllegalTransition(ValueError):
    def __init__(self, order_id: str, current: Status, wanted: Status) -> None:
        super().__init__(f"order {order_id}: {current.value} -> {wanted.value} is not allowed")
        self.current = current
        self.wanted = wanted


class InvalidOrder(ValueError):
    """Validation failed; ``problems`` lists (field, issue) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {i}" for f, i in problems))
        self.problems = problems


def can_transition(current: Status, wanted: Status) -> bool:
    return wanted in TRANSITIONS[current]


@dataclass(frozen=True)
class Fill:
    trade_id: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str | None
    timestamp_ms: int
    liquidity: str | None = None
    venue_order_id: str | None = None  # which venue order (leg) it filled


@dataclass(frozen=True)
class Tally:
    """Fills in aggregate: filled quantity, notional (sum of quantity x price), fees per currency and the single
    commission figure (``Order.commission``'s rule). An order's is computed from its fills; a parent keeps one per
    child instead of copying the child's fills (its document stays bounded)."""

    filled: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)
    commission: Decimal = Decimal(0)
    commissions: dict[str, Decimal] = field(default_factory=dict)

    @staticmethod
    def of(fills: tuple[Fill, ...], symbol: str) -> Tally:
        base, quote = (symbol.split("/") + [""])[:2]
        filled = notional = commission = Decimal(0)
        fees: dict[str, Decimal] = {}
        for f in fills:
            filled += f.quantity
            notional += f.quantity * f.price
            currency = f.fee_currency or "?"
            fees[currency] = fees.get(currency, Decimal(0)) + f.fee
            if f.fee_currency == quote:
                commission += f.fee
            elif f.fee_currency == base:
                commission += f.fee * f.price
        return Tally(filled, notional, commission, fees)

    def __add__(self, other: Tally) -> Tally:
        fees = dict(self.commissions)
        for currency, fee in other.commissions.items():
            fees[currency] = fees.get(currency, Decimal(0)) + fee
        return Tally(self.filled + other.filled, self.notional + other.notional, self.commission + other.commission,
                     fees)


@dataclass(frozen=True)
class ChildEntry:
    """A parent's record of one child: recorded (with the child's terms) BEFORE the child is created, so what the
    parent may still send is reduced at spawn; then the child's last known state, folded in by the slices. Kept
    until the child is retired (terminal, settled and closed for ``CHILD_RETIRE_MS``); its tally then moves into
    the parent's ``retired``. ``status`` None: recorded, not yet created."""

    order_id: str
    client_order_id: str
    venue: str
    slice_index: int
    quantity: Decimal
    order_type: OrderType
    price: Decimal | None
    time_in_force: TimeInForce
    post_only: bool
    placed_at: int
    status: Status | None = None
    remaining: Decimal | None = None  # what may still fill (the quantity until the child is created)
    tally: Tally = field(default_factory=Tally)
    terminal_at: int | None = None
    settled: bool = False

    @property
    def working(self) -> Decimal:
        """What of the parent's quantity this child may still fill."""
        if self.status is None:
            return self.quantity
        return Decimal(0) if self.status in TERMINAL else (self.remaining or Decimal(0))

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL


# A parent keeps a closed child's entry this long after it closed and settled (beyond the last late-fill check,
# 60 s, and the unknown-outcome horizon, 30 s, after which nothing in the service re-reads a closed child).
CHILD_RETIRE_MS = 600_000


class IntentKind(StrEnum):
    PLACE = "place"  # send the leg `venue_client_id` (the original, or the next attempt after a definitive miss)
    CANCEL = "cancel"  # cancel the leg `venue_client_id`
    REPLACE = "replace"  # cancel `replaces`, then place `venue_client_id` at `price`/`quantity`/`stop_price`


@dataclass(frozen=True)
class Intent:
    """The one venue command in flight for an order. Recorded (in the transaction that checked the order's
    status) before the venue is called; only its holder (`token`) calls the venue for it. Anyone else who finds
    it looks the venue order up instead, and may take it over once it is `stale` (its holder died)."""

    kind: IntentKind
    venue_client_id: str
    token: str
    since: int  # when this attempt was taken (epoch ms)
    attempt: int = 0
    replaces: str | None = None  # REPLACE: the leg being replaced
    cancelled_old: bool = False  # REPLACE: the venue has closed the leg being replaced
    price: Decimal | None = None  # REPLACE: the new terms
    quantity: Decimal | None = None
    stop_price: Decimal | None = None
    expire: bool = False  # CANCEL: the order's time in force ran out (a venue "canceled" is recorded as expired)


class LegState(StrEnum):
    UNSENT = "unsent"  # recorded, not yet sent (a replacement waiting for its original's cancel)
    UNCONFIRMED = "unconfirmed"  # sent (or maybe sent): the venue has not yet answered definitively
    OPEN = "open"  # working at the venue
    CLOSED = "closed"  # done at the venue (filled, canceled, expired, rejected) or definitively never there


@dataclass(frozen=True)
class Leg:
    """One venue order of an order, as the venue last described it."""

    venue_client_id: str
    state: LegState = LegState.UNSENT
    venue_order_id: str | None = None
    venue_status: str | None = None  # the adapter's status word: open, filled, canceled, expired, rejected
    venue_filled: Decimal = Decimal(0)  # the venue's cumulative filled quantity
    attempts: int = 0  # placements sent under this venue client id (each only once the previous was definitely lost)

    @property
    def live(self) -> bool:
        """The venue may be working it (or may yet)."""
        return self.state in (LegState.UNCONFIRMED, LegState.OPEN)


@dataclass(frozen=True)
class OrderEvent:
    """What the service publishes on every transition (the seed's output form plus context)."""

    order_id: str
    client_order_id: str
    signal_id: str | None
    strategy_id: str
    exchange: str
    symbol: str
    side: Side
    status: Status
    quantity: Decimal
    filled_quantity: Decimal
    remaining_quantity: Decimal
    average_price: Decimal | None
    commission: Decimal
    sequence: int
    timestamp: int
    last_fill: Fill | None = None
    commissions: dict[str, Decimal] = field(default_factory=dict)
    attention: str | None = None
    reason: str | None = None
    algorithm: str | None = None  # a parent's algorithm
    parent_id: str | None = None  # a child's parent

    def as_message(self) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "order_id": self.order_id,
            "signal_id": self.signal_id,
            "status": self.status.value,
            "filled_quantity": self.filled_quantity,
            "average_price": self.average_price,
            "commission": self.commission,
            "commissions": dict(self.commissions),
            "timestamp": self.timestamp,
            "client_order_id": self.client_order_id,
            "strategy_id": self.strategy_id,
            "exchange": self.exchange,
            "symbol": self.symbol,
            "side": self.side.value,
            "quantity": self.quantity,
            "remaining_quantity": self.remaining_quantity,
            "sequence": self.sequence,
            "last_fill": None,
            "reason": self.reason,
            "algorithm": self.algorithm,
            "parent_id": self.parent_id,
            "attention": self.attention,
        }
        if self.last_fill is not None:
            f = self.last_fill
            msg["last_fill"] = {"trade_id": f.trade_id, "quantity": f.quantity, "price": f.price, "fee": f.fee,
                                "fee_currency": f.fee_currency, "timestamp": f.timestamp_ms}
        return msg


@dataclass(frozen=True)
class Order:
    order_id: str
    client_order_id: str
    strategy_id: str
    exchange: str
    symbol: str
    side: Side
    quantity: Decimal
    order_type: OrderType
    time_in_force: TimeInForce
    created_at: int
    signal_id: str | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None
    post_only: bool = False
    reduce_only: bool = False
    expire_at: int | None = None
    max_slippage_bps: Decimal | None = None
    tags: dict[str, str] = field(default_factory=dict)
    status: Status = S.NEW
    version: int = 0
    sequence: int = 1  # of the last event (the creation event is 1)
    updated_at: int = 0
    venue_order_id: str | None = None
    venue_client_order_id: str | None = None  # the id at the venue now (changes on cancel/replace)
    replace_count: int = 0
    legs: tuple[Leg, ...] = ()  # every venue order of this order, oldest first
    intent: Intent | None = None  # the venue command in flight, if any
    fills: tuple[Fill, ...] = ()
    reason: str | None = None
    attention: str | None = None  # set when a person should look (e.g. the venue cannot find the order)
    submitted_at: int | None = None
    acknowledged_at: int | None = None
    first_fill_at: int | None = None
    terminal_at: int | None = None
    cancel_requested_at: int | None = None  # the first cancel request (TCA: cancel request -> confirmation)
    # TCA of parents: the schedule's last planned cumulative quantity and the running gaps to it
    # (shared/domain/tca.py ScheduleTrack), and the SmartRouter's pre-trade estimates
    schedule_planned: Decimal | None = None
    schedule_points: int = 0
    schedule_gap_max: Decimal = Decimal(0)
    schedule_gap_sq: Decimal = Decimal(0)
    router_best_price: Decimal | None = None
    router_consolidated_price: Decimal | None = None
    # Execution algorithms: a parent carries its algorithm and progress; a child names its parent.
    algorithm: str | None = None
    algorithm_params: dict[str, Any] = field(default_factory=dict)
    parent_id: str | None = None
    slices_done: int = 0
    next_slice_at: int | None = None
    last_slice_at: int | None = None  # when the latest slice looked at the market (POV counts volume from there)
    paused: bool = False
    arrival_mid: Decimal | None = None
    # Transaction cost analysis (shared/domain/tca.py): the mid when the order was received (its decision price),
    # and the venue's touch when its first venue order was sent (read while the placement was in flight).
    decision_mid: Decimal | None = None
    arrival_bid: Decimal | None = None
    arrival_ask: Decimal | None = None
    notes: tuple[str, ...] = ()  # why children were not sent (slippage bound, ...), newest last
    children: tuple[ChildEntry, ...] = ()  # a parent's children not yet retired, oldest first
    retired: Tally = field(default_factory=Tally)  # what a parent's retired children filled
    retired_children: int = 0
    # The one self-rescheduling sync chain of this order: its generation (a task of another is a no-op) and the
    # time by which its next task promises to run (past that, plus a grace, the chain is dead and may be replaced).
    sync_chain: int = 0
    sync_lease_until: int = 0

    @property
    def is_parent(self) -> bool:
        return self.algorithm is not None and self.algorithm != "direct"

    # ---- derived from fills (a parent's: from its children's tallies) ----------------------------------
    @property
    def tally(self) -> Tally:
        if self.is_parent:
            return sum((c.tally for c in self.children), self.retired)
        return Tally.of(self.fills, self.symbol)

    @property
    def filled_quantity(self) -> Decimal:
        if self.is_parent:
            return self.tally.filled
        return sum((f.quantity for f in self.fills), Decimal(0))

    @property
    def remaining_quantity(self) -> Decimal:
        if self.status in TERMINAL:
            return Decimal(0)
        return max(Decimal(0), self.quantity - self.filled_quantity)

    @property
    def overfill(self) -> Decimal:
        """What the venue filled beyond the quantity (kept, never discarded; the order is flagged)."""
        return max(Decimal(0), self.filled_quantity - self.quantity)

    @property
    def average_price(self) -> Decimal | None:
        """Quantity-weighted, rounded half-even to 12 decimal places (AVERAGE_PRICE_PLACES)."""
        t = self.tally
        if not t.filled:
            return None
        return (t.notional / t.filled).quantize(AVERAGE_PRICE_PLACES, rounding=ROUND_HALF_EVEN)

    @property
    def commissions(self) -> dict[str, Decimal]:
        """Fees per currency, exactly as the venue charged them ("?" where it did not say)."""
        return self.tally.commissions

    @property
    def commission(self) -> Decimal:
        """The seed's single figure, in the quote currency: fees charged in the quote currency, plus fees charged
        in the base currency valued at their fill's price. Fees in any other currency (e.g. BNB) are not in it:
        they are only in ``commissions``."""
        return self.tally.commission

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def venue_id(self) -> str:
        """The client order id the venue knows this order's current venue order by."""
        return self.venue_client_order_id or self.client_order_id

    def leg(self, venue_client_id: str) -> Leg | None:
        return next((leg for leg in self.legs if leg.venue_client_id == venue_client_id), None)

    def with_leg(self, leg: Leg) -> Order:
        """The order with `leg` added, or replacing the leg of the same venue client id."""
        if self.leg(leg.venue_client_id) is None:
            return replace(self, legs=(*self.legs, leg))
        return replace(self, legs=tuple(leg if old.venue_client_id == leg.venue_client_id else old
                                        for old in self.legs))

    @property
    def live_legs(self) -> tuple[Leg, ...]:
        return tuple(leg for leg in self.legs if leg.live)

    def fill_lag(self) -> dict[str, Decimal]:
        """Per venue client id: how much the venue says filled beyond the fills we hold (the trades list lags)."""
        lag: dict[str, Decimal] = {}
        for leg in self.legs:
            held = sum((f.quantity for f in self.fills if f.venue_order_id is not None
                        and f.venue_order_id == leg.venue_order_id), Decimal(0))
            if leg.venue_filled > held:
                lag[leg.venue_client_id] = leg.venue_filled - held
        return lag

    @property
    def settled(self) -> bool:
        """Nothing of it can still work or fill unseen: no command in flight, no live leg, no lagging fills."""
        return self.intent is None and not self.live_legs and not self.fill_lag()

    # ---- changes ---------------------------------------------------------------------------------------
    def _event(self, order: Order, at_ms: int, last_fill: Fill | None = None) -> OrderEvent:
        return OrderEvent(
            order_id=order.order_id, client_order_id=order.client_order_id, signal_id=order.signal_id,
            strategy_id=order.strategy_id, exchange=order.exchange, symbol=order.symbol, side=order.side,
            status=order.status, quantity=order.quantity, filled_quantity=order.filled_quantity,
            remaining_quantity=order.remaining_quantity, average_price=order.average_price,
            commission=order.commission, sequence=order.sequence, timestamp=at_ms, last_fill=last_fill,
            reason=order.reason, algorithm=order.algorithm, parent_id=order.parent_id,
            commissions=order.commissions, attention=order.attention,
        )

    def created_event(self) -> OrderEvent:
        return self._event(self, self.created_at)

    def transition(self, to: Status, at_ms: int, reason: str | None = None, **changes: Any) -> tuple[Order, OrderEvent]:
        """Move to `to` (raises IllegalTransition if the table forbids it)."""
        if not can_transition(self.status, to):
            raise IllegalTransition(self.order_id, self.status, to)
        stamps: dict[str, Any] = {}
        if to is S.PENDING_SUBMIT and self.submitted_at is None:
            stamps["submitted_at"] = at_ms
        if to in _WORKING and self.acknowledged_at is None:
            stamps["acknowledged_at"] = at_ms
        if to in TERMINAL:
            stamps["terminal_at"] = at_ms
        if to is S.PENDING_CANCEL and self.cancel_requested_at is None:
            stamps["cancel_requested_at"] = at_ms
        order = replace(self, status=to, version=self.version + 1, sequence=self.sequence + 1, updated_at=at_ms,
                        reason=reason if reason is not None else (self.reason if to is self.status else None),
                        **stamps, **changes)
        return order, self._event(order, at_ms)

    def flagged(self, attention: str, at_ms: int) -> tuple[Order, OrderEvent]:
        """Mark the order for a person's attention (status unchanged) and say so in an event."""
        order = replace(self, attention=attention, reason=attention, version=self.version + 1,
                        sequence=self.sequence + 1, updated_at=at_ms)
        return order, self._event(order, at_ms)

    def with_fill(self, fill: Fill, at_ms: int) -> tuple[Order, list[OrderEvent]]:
        """Account a fill (once per trade id) and move to partially_filled / filled as the quantity says.

        Every fill is kept: one after a cancel, expiry or rejection (the money moved; the status stays unless
        the fill completes the order), one after `filled` (an overfill: kept, shown in ``overfill`` and flagged
        for attention). Returns no event for a fill already counted.
        """
        if any(f.trade_id == fill.trade_id for f in self.fills):
            return self, []
        fills = tuple(sorted((*self.fills, fill), key=lambda f: (f.timestamp_ms, f.trade_id)))
        return self._filled_more(replace(self, fills=fills, first_fill_at=self.first_fill_at or at_ms), at_ms, fill)

    def with_children(self, children: tuple[ChildEntry, ...], retired: Tally, retired_children: int,
                      at_ms: int) -> tuple[Order, list[OrderEvent]]:
        """A parent with its children's state folded in: moves to partially_filled / filled as their fills say
        (one event per change of the filled quantity), flags an overfill; a closed parent keeps its status."""
        folded = replace(self, children=children, retired=retired, retired_children=retired_children)
        if folded == self:
            return self, []
        if folded.filled_quantity == self.filled_quantity:
            return replace(folded, version=self.version + 1, updated_at=at_ms), []
        return self._filled_more(replace(folded, first_fill_at=self.first_fill_at or at_ms), at_ms, None)

    def _filled_more(self, counted: Order, at_ms: int, fill: Fill | None) -> tuple[Order, list[OrderEvent]]:
        """`counted` (self with more filled) moved as its filled quantity says, with its events."""
        events: list[OrderEvent] = []
        filled = counted.filled_quantity
        if filled >= self.quantity and self.status is not S.FILLED:
            order, _ = counted.transition(S.FILLED, at_ms)
        elif self.status in (S.PENDING_SUBMIT, S.ACCEPTED, S.TRIGGERED, S.PARTIALLY_FILLED):
            order, _ = counted.transition(S.PARTIALLY_FILLED, at_ms)
        else:
            # Counted, status kept: a late fill of a closed order, an overfill, or one during a cancel/replace.
            order = replace(counted, version=self.version + 1, sequence=self.sequence + 1, updated_at=at_ms)
        events.append(self._event(order, at_ms, last_fill=fill))
        if order.overfill and not (order.attention or "").startswith("overfill"):
            order, flag = order.flagged(f"overfill: the venue filled {order.overfill} beyond the quantity "
                                        f"{order.quantity}", at_ms)
            events.append(flag)
        return order, events


# ---- identity -------------------------------------------------------------------------------------------
def digest(*parts: str) -> str:
    """The one hash behind every derived id (order, signal, venue client and algorithm child ids)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def client_order_id_for_signal(strategy_id: str, signal_id: str) -> str:
    """Deterministic: the same signal always maps to the same client order id (and so to one order)."""
    return f"sig-{digest('signal', strategy_id, signal_id)[:28]}"


def order_id_for(strategy_id: str, client_order_id: str) -> str:
    """A client order id is unique per strategy: two strategies may use the same one for different orders."""
    return f"ord_{digest('order', strategy_id, client_order_id)[:24]}"


def venue_client_id_for(strategy_id: str, client_order_id: str) -> str:
    """The id the venue knows an order's first venue order by: derived from the strategy and the client order id,
    so two strategies never collide at the venue (at most 36 characters, the tightest venue limit)."""
    return f"x-{digest('venue', strategy_id, client_order_id)[:30]}"


def replacement_client_order_id(client_order_id: str, replace_count: int) -> str:
    """The venue-side id of the n-th cancel/replace of an order: deterministic, so a retried replace finds it.
    `client_order_id` is the order's first venue client id (already unique per strategy)."""
    return f"rpl-{digest('replace', client_order_id, str(replace_count))[:28]}"


TERMS = ("exchange", "symbol", "side", "quantity", "order_type", "time_in_force", "price", "stop_price",
         "post_only", "reduce_only", "expire_at", "max_slippage_bps", "algorithm", "algorithm_params", "parent_id")


def differing_terms(first: Order, again: Order) -> list[str]:
    """The terms in which a repeated request (same strategy and client order id) differs from the order on
    record: a repeat with the same terms is the same order, one with other terms is an error."""
    return [name for name in TERMS if getattr(first, name) != getattr(again, name)]


# ---- validation -----------------------------------------------------------------------------------------
def validate(order: Order, venues: set[str] | None = None, now_ms: int | None = None) -> None:
    """Raise InvalidOrder listing every problem (not just the first)."""
    problems: list[tuple[str, str]] = []

    def positive(name: str, value: Decimal | None) -> None:
        if value is not None and (not value.is_finite() or value <= 0):
            problems.append((name, "must be a finite number greater than 0"))

    if not CLIENT_ORDER_ID.match(order.client_order_id):
        problems.append(("client_order_id", "1-36 characters from A-Z a-z 0-9 . _ : -"))
    if not order.strategy_id:
        problems.append(("strategy_id", "required"))
    if not SYMBOL.match(order.symbol):
        problems.append(("symbol", "must be BASE/QUOTE in capitals, e.g. BTC/USDT"))
    if order.exchange == SMART and order.algorithm != SMART:
        problems.append(("exchange", "smart routes through the SmartRouter: algorithm must be smart"))
    elif venues is not None and order.exchange not in venues and order.exchange != SMART:
        known = ", ".join(sorted(venues)) or "none configured"
        problems.append(("exchange", f"unknown venue {order.exchange!r}; known: {known}"))
    positive("quantity", order.quantity)
    positive("price", order.price)
    positive("stop_price", order.stop_price)
    needs_price = order.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
    if needs_price and order.price is None:
        problems.append(("price", f"required for a {order.order_type.value} order"))
    if order.order_type is OrderType.MARKET and order.price is not None:
        problems.append(("price", "not allowed for a market order (use max_slippage_bps to bound it)"))
    needs_stop = order.order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
    if needs_stop and order.stop_price is None:
        problems.append(("stop_price", f"required for a {order.order_type.value} order"))
    if not needs_stop and order.stop_price is not None:
        problems.append(("stop_price", f"not allowed for a {order.order_type.value} order"))
    if order.post_only and order.order_type is not OrderType.LIMIT:
        problems.append(("post_only", "only for limit orders"))
    if order.post_only and order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
        problems.append(("post_only", f"cannot be combined with {order.time_in_force.value}"))
    if order.order_type is OrderType.MARKET and order.time_in_force not in (TimeInForce.IOC, TimeInForce.FOK,
                                                                              TimeInForce.GTC):
        problems.append(("time_in_force", "a market order is GTC, IOC or FOK"))
    if order.time_in_force is TimeInForce.GTD:
        if order.expire_at is None:
            problems.append(("expire_at", "required with time_in_force GTD"))
        elif now_ms is not None and order.expire_at <= now_ms:
            problems.append(("expire_at", "must be in the future"))
    elif order.expire_at is not None:
        problems.append(("expire_at", "only with time_in_force GTD"))
    if order.max_slippage_bps is not None and (not order.max_slippage_bps.is_finite() or
                                               not 0 < order.max_slippage_bps <= 10_000):
        problems.append(("max_slippage_bps", "must be greater than 0 and at most 10000"))
    if problems:
        raise InvalidOrder(problems)


def day_end_ms(created_at_ms: int) -> int:
    """The end of the UTC day an order was created in (DAY orders expire then)."""
    day = 86_400_000
    return (created_at_ms // day + 1) * day


def expiry_ms(order: Order) -> int | None:
    if order.time_in_force is TimeInForce.GTD:
        return order.expire_at
    if order.time_in_force is TimeInForce.DAY:
        return day_end_ms(order.created_at)
    return None


# ---- what the venue reports -----------------------------------------------------------------------------
@dataclass(frozen=True)
class VenueReport:
    """The venue's view of one venue order, as the adapter reported it (statuses: open, filled, canceled,
    expired, rejected; see the adapter protocol), with the fills we fetched for it."""

    status: str
    venue_order_id: str | None
    filled_quantity: Decimal
    fills: tuple[Fill, ...] = ()
    triggered: bool = False
    venue_client_id: str | None = None  # which leg; None: the order's current one


_VENUE_TERMINAL = {"canceled": S.CANCELED, "expired": S.EXPIRED, "rejected": S.REJECTED, "filled": S.FILLED}


def apply_venue_report(order: Order, report: VenueReport, at_ms: int,
                       reason: str | None = None) -> tuple[Order, list[OrderEvent]]:
    """Record what the venue says of one of the order's venue orders: the leg's state and cumulative filled
    quantity, its acknowledgement, each new fill (once), then the order's final status if it is settled.

    Every fact is kept; nothing here can be refused. The status becomes terminal only when the order is
    ``settled`` (no intent in flight, no live leg, fills adding up to the venue's cumulative quantity); fills the
    venue's trades list has not shown yet flag the order for attention until they arrive.
    """
    events: list[OrderEvent] = []
    client_id = report.venue_client_id or order.venue_id
    known = order.leg(client_id) or Leg(client_id)
    closed = report.status != "open"
    leg = replace(known, state=LegState.CLOSED if closed else LegState.OPEN,
                  venue_order_id=report.venue_order_id or known.venue_order_id, venue_status=report.status,
                  venue_filled=max(known.venue_filled, report.filled_quantity))
    order = order.with_leg(leg)
    if client_id == order.venue_id and report.venue_order_id and order.venue_order_id != report.venue_order_id:
        order = replace(order, venue_order_id=report.venue_order_id)
    if order.status is S.PENDING_SUBMIT and report.status not in ("rejected",):
        order, event = order.transition(S.ACCEPTED, at_ms)
        events.append(event)
    if order.status in (S.ACCEPTED, S.PENDING_REPLACE) and report.triggered and report.status == "open":
        order, event = order.transition(S.TRIGGERED, at_ms)
        events.append(event)
    for fill in sorted(report.fills, key=lambda f: (f.timestamp_ms, f.trade_id)):
        if fill.venue_order_id is None:
            fill = replace(fill, venue_order_id=leg.venue_order_id)
        order, more = order.with_fill(fill, at_ms)
        events += more
    order, more = settle(order, at_ms, reason)
    return order, events + more


def settle(order: Order, at_ms: int, reason: str | None = None) -> tuple[Order, list[OrderEvent]]:
    """Move a settled order to its final status: filled if the quantity is done, else what the venue said of its
    current leg (canceled, expired, rejected). An unsettled order whose legs are all closed but whose fills lag
    is flagged (once) and keeps being checked."""
    if order.is_terminal and order.status is not S.CANCELED and order.status is not S.EXPIRED:
        return order, []
    if order.intent is not None or order.live_legs or not order.legs:
        return order, []
    lag = order.fill_lag()
    if lag:
        note = "attention: fills lag the venue: " + ", ".join(f"{cid} {qty} more" for cid, qty in sorted(lag.items()))
        if order.attention == note:
            return order, []
        flagged, event = order.flagged(note, at_ms)
        return flagged, [event]
    if order.attention and order.attention.startswith("attention: fills lag"):
        order = replace(order, attention=None)
    if order.is_terminal:
        return order, []
    current = order.leg(order.venue_id) or order.legs[-1]
    final = _VENUE_TERMINAL.get(current.venue_status or "", S.CANCELED)
    if order.filled_quantity >= order.quantity:
        final = S.FILLED
    elif final is S.FILLED:  # the venue says filled but the fills say otherwise: lag handled above
        final = S.CANCELED
    order, event = order.transition(final, at_ms, reason=reason)
    return order, [event]


def working_status(order: Order) -> Status:
    """Where a refused cancel or replace returns the order to (it is pending_*, so its trigger state is gone:
    a venue reporting it triggered again moves it on)."""
    return S.PARTIALLY_FILLED if order.fills else S.ACCEPTED


# ---- parents: their budget is their own state --------------------------------------------------------------
def fold_children(parent: Order, children: dict[str, Order], at_ms: int) -> tuple[Order, list[OrderEvent]]:
    """The parent with each child's last known state (`children`: order id -> the child's record) in its entry;
    entries of children closed, settled and older than CHILD_RETIRE_MS are retired into ``retired``. An entry
    whose child is not in `children` (not created yet) is kept as it is."""
    entries: list[ChildEntry] = []
    retired, count = parent.retired, parent.retired_children
    for entry in parent.children:
        child = children.get(entry.order_id)
        if child is not None:
            entry = replace(entry, status=child.status, remaining=child.remaining_quantity, tally=child.tally,
                            terminal_at=child.terminal_at if child.is_terminal else None,
                            settled=child.is_terminal and child.settled)
        if entry.ended and entry.settled and entry.terminal_at is not None \
                and at_ms - entry.terminal_at >= CHILD_RETIRE_MS:
            retired, count = retired + entry.tally, count + 1
            continue
        entries.append(entry)
    return parent.with_children(tuple(entries), retired, count, at_ms)


def parent_working(parent: Order) -> Decimal:
    """What the parent's children may still fill: recorded-not-yet-created children count in full."""
    return sum((c.working for c in parent.children), Decimal(0))
