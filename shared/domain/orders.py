"""Orders: their fields and validation, the one state-transition table, fill accounting, and the events.

Pure: no I/O and no clock (every time is a parameter, epoch milliseconds). Quantities and prices are Decimal.

An ``Order`` is immutable; every change returns a new one with its ``version`` advanced and, for each status
transition, an ``OrderEvent`` with the next per-order ``sequence`` number. ``TRANSITIONS`` is the only place
that says which status may follow which. It admits what venues really do: a fill that raced a cancel
(CANCELED -> FILLED), a cancel refused because the order had filled (PENDING_CANCEL -> FILLED), a refused
cancel or replace (back to working), stop orders triggering. Fills are keyed by venue trade id, so a repeated
or reordered fill report changes nothing twice.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
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
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    GTD = "GTD"  # good till expire_at; the service expires it
    DAY = "DAY"  # good till the end of the UTC day it was created in; the service expires it


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
    S.ACCEPTED: frozenset({S.TRIGGERED, S.PARTIALLY_FILLED, S.FILLED, S.PENDING_CANCEL, S.PENDING_REPLACE,
                           S.CANCELED, S.EXPIRED}),
    S.TRIGGERED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.PENDING_CANCEL, S.PENDING_REPLACE, S.CANCELED,
                            S.EXPIRED}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.PENDING_CANCEL, S.PENDING_REPLACE, S.CANCELED,
                                   S.EXPIRED}),
    # A cancel in flight: it may succeed, lose the race to fills, or be refused (back to working).
    S.PENDING_CANCEL: frozenset({S.CANCELED, S.FILLED, S.PARTIALLY_FILLED, S.ACCEPTED, S.TRIGGERED, S.EXPIRED,
                                 S.PENDING_CANCEL}),
    # A replace in flight: done (working again at the new terms), refused (working at the old), or overtaken.
    S.PENDING_REPLACE: frozenset({S.ACCEPTED, S.TRIGGERED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED,
                                  S.PENDING_CANCEL, S.PENDING_REPLACE}),
    # Fills reported after the cancel or expiry (they happened before it at the venue).
    S.CANCELED: frozenset({S.FILLED}),
    S.EXPIRED: frozenset({S.FILLED}),
    S.FILLED: frozenset(),
    S.REJECTED: frozenset(),
}

TERMINAL = frozenset({S.FILLED, S.CANCELED, S.EXPIRED, S.REJECTED})
WORKING = frozenset(_WORKING | {S.PENDING_SUBMIT, S.PENDING_CANCEL, S.PENDING_REPLACE})
OPEN = frozenset(WORKING | {S.NEW})  # everything not terminal

SMART = "smart"  # the exchange of an order the SmartRouter spreads over every venue
CLIENT_ORDER_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,36}$")
SYMBOL = re.compile(r"^[A-Z0-9]{2,12}/[A-Z0-9]{2,12}$")


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
    fills: tuple[Fill, ...] = ()
    reason: str | None = None
    attention: str | None = None  # set when a person should look (e.g. the venue cannot find the order)
    submitted_at: int | None = None
    acknowledged_at: int | None = None
    first_fill_at: int | None = None
    terminal_at: int | None = None
    # Execution algorithms: a parent carries its algorithm and progress; a child names its parent.
    algorithm: str | None = None
    algorithm_params: dict[str, Any] = field(default_factory=dict)
    parent_id: str | None = None
    slices_done: int = 0
    next_slice_at: int | None = None
    last_slice_at: int | None = None  # when the latest slice looked at the market (POV counts volume from there)
    paused: bool = False
    arrival_mid: Decimal | None = None
    notes: tuple[str, ...] = ()  # why children were not sent (slippage bound, ...), newest last

    @property
    def is_parent(self) -> bool:
        return self.algorithm is not None and self.algorithm != "direct"

    # ---- derived from fills ----------------------------------------------------------------------------
    @property
    def filled_quantity(self) -> Decimal:
        return sum((f.quantity for f in self.fills), Decimal(0))

    @property
    def remaining_quantity(self) -> Decimal:
        if self.status in TERMINAL:
            return Decimal(0)
        return max(Decimal(0), self.quantity - self.filled_quantity)

    @property
    def average_price(self) -> Decimal | None:
        filled = self.filled_quantity
        if not filled:
            return None
        return sum((f.quantity * f.price for f in self.fills), Decimal(0)) / filled

    @property
    def commission(self) -> Decimal:
        return sum((f.fee for f in self.fills), Decimal(0))

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def venue_id(self) -> str:
        """The client order id the venue knows this order by."""
        return self.venue_client_order_id or self.client_order_id

    # ---- changes ---------------------------------------------------------------------------------------
    def _event(self, order: Order, at_ms: int, last_fill: Fill | None = None) -> OrderEvent:
        return OrderEvent(
            order_id=order.order_id, client_order_id=order.client_order_id, signal_id=order.signal_id,
            strategy_id=order.strategy_id, exchange=order.exchange, symbol=order.symbol, side=order.side,
            status=order.status, quantity=order.quantity, filled_quantity=order.filled_quantity,
            remaining_quantity=order.remaining_quantity, average_price=order.average_price,
            commission=order.commission, sequence=order.sequence, timestamp=at_ms, last_fill=last_fill,
            reason=order.reason, algorithm=order.algorithm, parent_id=order.parent_id,
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
        order = replace(self, status=to, version=self.version + 1, sequence=self.sequence + 1, updated_at=at_ms,
                        reason=reason if reason is not None else (self.reason if to is self.status else None),
                        **stamps, **changes)
        return order, self._event(order, at_ms)

    def flagged(self, attention: str, at_ms: int) -> tuple[Order, OrderEvent]:
        """Mark the order for a person's attention (status unchanged) and say so in an event."""
        order = replace(self, attention=attention, reason=attention, version=self.version + 1,
                        sequence=self.sequence + 1, updated_at=at_ms)
        return order, self._event(order, at_ms)

    def with_fill(self, fill: Fill, at_ms: int) -> tuple[Order, OrderEvent | None]:
        """Account a fill (once per trade id) and move to partially_filled / filled as the quantity says.

        A fill that arrives after a cancel or expiry is still counted (the money moved); the status stays
        terminal unless the fill completes the order. Returns no event for a fill already counted.
        """
        if any(f.trade_id == fill.trade_id for f in self.fills):
            return self, None
        fills = tuple(sorted((*self.fills, fill), key=lambda f: (f.timestamp_ms, f.trade_id)))
        filled = sum((f.quantity for f in fills), Decimal(0))
        stamps = {"first_fill_at": self.first_fill_at or at_ms}
        if filled >= self.quantity:
            target = S.FILLED
        elif self.status in (S.CANCELED, S.EXPIRED, S.PENDING_CANCEL, S.PENDING_REPLACE):
            # Counted, status kept: a late fill of a closed order, or one during a cancel/replace in flight.
            order = replace(self, fills=fills, version=self.version + 1, sequence=self.sequence + 1,
                            updated_at=at_ms, **stamps)
            return order, self._event(order, at_ms, last_fill=fill)
        else:
            target = S.PARTIALLY_FILLED
        order, _ = replace(self, fills=fills, **stamps).transition(target, at_ms)
        return order, self._event(order, at_ms, last_fill=fill)


# ---- identity -------------------------------------------------------------------------------------------
def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def client_order_id_for_signal(strategy_id: str, signal_id: str) -> str:
    """Deterministic: the same signal always maps to the same client order id (and so to one order)."""
    return f"sig-{_digest('signal', strategy_id, signal_id)[:28]}"


def order_id_for(client_order_id: str) -> str:
    return f"ord_{_digest('order', client_order_id)[:24]}"


def replacement_client_order_id(client_order_id: str, replace_count: int) -> str:
    """The venue-side id of the n-th cancel/replace of an order: deterministic, so a retried replace finds it."""
    return f"rpl-{_digest('replace', client_order_id, str(replace_count))[:28]}"


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
    """The venue's view of an order, as the adapter reported it (statuses: open, filled, canceled, expired,
    rejected; see the adapter protocol)."""

    status: str
    venue_order_id: str | None
    filled_quantity: Decimal
    fills: tuple[Fill, ...] = ()
    triggered: bool = False


_VENUE_TERMINAL = {"canceled": S.CANCELED, "expired": S.EXPIRED, "rejected": S.REJECTED}


def apply_venue_report(order: Order, report: VenueReport, at_ms: int,
                       reason: str | None = None) -> tuple[Order, list[OrderEvent]]:
    """Bring the order in line with the venue: acknowledgement, new fills (each once), then its final status.

    Anything the table forbids (a report that contradicts what we know) is refused with IllegalTransition,
    and the caller logs it and keeps the order as it was.
    """
    events: list[OrderEvent] = []

    def step(result: tuple[Order, OrderEvent | None]) -> None:
        nonlocal order
        order, event = result
        if event is not None:
            events.append(event)

    if report.venue_order_id and order.venue_order_id != report.venue_order_id:
        order = replace(order, venue_order_id=report.venue_order_id)
    if order.status is S.PENDING_SUBMIT and report.status != "rejected":
        step(order.transition(S.ACCEPTED, at_ms))
    if order.status in (S.ACCEPTED, S.PENDING_REPLACE) and report.triggered and report.status == "open":
        step(order.transition(S.TRIGGERED, at_ms))
    for fill in sorted(report.fills, key=lambda f: (f.timestamp_ms, f.trade_id)):
        step(order.with_fill(fill, at_ms))
    final = _VENUE_TERMINAL.get(report.status)
    if final is not None and order.status is not final and order.status is not S.FILLED:
        if order.status in TERMINAL and final is not S.REJECTED:
            return order, events  # already closed for another reason; keep it
        step(order.transition(final, at_ms, reason=reason))
    return order, events


def working_status(order: Order) -> Status:
    """Where a refused cancel or replace returns the order to (it is pending_*, so its trigger state is gone:
    a venue reporting it triggered again moves it on)."""
    return S.PARTIALLY_FILLED if order.fills else S.ACCEPTED
