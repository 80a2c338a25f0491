"""Market data as the router and the execution algorithms see it: order books, each venue's trading terms for a
symbol, and a snapshot of both across venues at one moment.

Pure: no I/O and no clock (``at_ms`` is epoch milliseconds, passed in). Prices and quantities are Decimal.

Rounding helpers. A quantity is always rounded DOWN to a multiple of the lot (never send more than was meant).
A limit price is rounded to the tick in the PASSIVE direction, so rounding never makes an order more aggressive
than the price it came from: a buy's limit rounds down, a sell's limit rounds up (``round_price``).

Venue fit (``venue_fit_problems``): whether an order's own terms are ones the venue takes as they are (lot, tick,
minimum and maximum quantity, minimum and maximum notional). It never rounds: an order a client sent is accepted
as sent or refused naming the venue's rule; only the service's own children are rounded (passively, above).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation

from shared.domain.orders import Side

ZERO = Decimal(0)


@dataclass(frozen=True)
class Level:
    price: Decimal
    quantity: Decimal


@dataclass(frozen=True)
class Book:
    """One venue's order book for one symbol; each side best first (bids descending, asks ascending)."""

    venue: str
    symbol: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    at_ms: int

    @property
    def best_bid(self) -> Decimal | None:
        return self.bids[0].price if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        return self.asks[0].price if self.asks else None

    @property
    def mid(self) -> Decimal | None:
        bid, ask = self.best_bid, self.best_ask
        return None if bid is None or ask is None else (bid + ask) / 2

    def far_side(self, side: Side) -> tuple[Level, ...]:
        """The levels an order on `side` takes from (asks for a buy, bids for a sell)."""
        return self.asks if side is Side.BUY else self.bids

    def near_side(self, side: Side) -> tuple[Level, ...]:
        """The levels an order on `side` rests among (bids for a buy, asks for a sell)."""
        return self.bids if side is Side.BUY else self.asks


@dataclass(frozen=True)
class VenueTerms:
    """What a venue requires of an order in one symbol. Fees are rates (Decimal("0.001") is 10 bps)."""

    venue: str
    symbol: str
    tick_size: Decimal
    lot_size: Decimal
    min_quantity: Decimal
    min_notional: Decimal | None
    maker_fee: Decimal
    taker_fee: Decimal
    max_quantity: Decimal | None = None
    max_notional: Decimal | None = None
    # Venues whose precision counts significant digits (ccxt's SIGNIFICANT_DIGITS mode) have no fixed grid:
    # tick_size / lot_size are 0 there and these say how many significant digits a price / quantity may have.
    price_significant_digits: int | None = None
    quantity_significant_digits: int | None = None

    def round_quantity(self, quantity: Decimal) -> Decimal:
        q = round_quantity(quantity, self.lot_size)
        if self.quantity_significant_digits is not None:
            q = round_significant(q, self.quantity_significant_digits, ROUND_FLOOR)
        return q

    def round_price(self, side: Side, price: Decimal) -> Decimal:
        p = round_price(side, price, self.tick_size)
        if self.price_significant_digits is not None:
            p = round_significant(p, self.price_significant_digits, ROUND_FLOOR if side is Side.BUY else ROUND_CEILING)
        return p

    def min_order(self, price: Decimal) -> Decimal:
        """The smallest quantity the venue accepts at `price`: at least one lot, its minimum quantity and its
        minimum notional, up to a multiple of the lot."""
        q = ceil_to(max(self.min_quantity, self.lot_size), self.lot_size)
        if self.min_notional is not None and price > 0:
            q = max(q, ceil_to(self.min_notional / price, self.lot_size))
        return q

    def shortfall(self, quantity: Decimal, price: Decimal | None) -> str | None:
        """Why an order of `quantity` at `price` would be refused for its size (None: it meets the minimums).
        The notional is checked at `price` when one is given."""
        if quantity < self.min_quantity or quantity <= 0:
            return f"{quantity} is below {self.venue}'s minimum quantity {self.min_quantity}"
        if self.min_notional is not None and price is not None and quantity * price < self.min_notional:
            return (f"{quantity} at {price} is a notional of {quantity * price}, below {self.venue}'s minimum "
                    f"notional {self.min_notional}")
        return None


@dataclass(frozen=True)
class MarketSnapshot:
    """Books and terms of the venues listing one symbol, keyed by venue, at one moment."""

    at_ms: int
    books: Mapping[str, Book]
    terms: Mapping[str, VenueTerms]
    # Market volume traded since the previous slice (for POV and participation caps); None when unknown.
    traded_volume: Decimal | None = None
    # Relative volume per equal time bucket over the algorithm's window (for VWAP); None when unknown.
    volume_profile: tuple[Decimal, ...] | None = None

    def mid(self) -> Decimal | None:
        return consolidated_mid(self.books)


# ---- rounding -------------------------------------------------------------------------------------------
def floor_to(value: Decimal, step: Decimal) -> Decimal:
    """The largest multiple of `step` not above `value` (`value` itself when step is not positive)."""
    if step <= 0:
        return value
    return Decimal(int((value / step).to_integral_value(rounding=ROUND_FLOOR))) * step  # in the step's exponent


def ceil_to(value: Decimal, step: Decimal) -> Decimal:
    """The smallest multiple of `step` not below `value` (`value` itself when step is not positive)."""
    if step <= 0:
        return value
    return Decimal(int((value / step).to_integral_value(rounding=ROUND_CEILING))) * step


def round_quantity(quantity: Decimal, lot_size: Decimal) -> Decimal:
    """Down to a multiple of the lot (0 when below one lot)."""
    return max(ZERO, floor_to(quantity, lot_size))


def round_price(side: Side, price: Decimal, tick_size: Decimal) -> Decimal:
    """To the tick, passively: a buy's limit rounds DOWN, a sell's limit rounds UP (never more aggressive)."""
    return floor_to(price, tick_size) if side is Side.BUY else ceil_to(price, tick_size)


def round_significant(value: Decimal, digits: int, rounding: str) -> Decimal:
    """To at most `digits` significant digits, in the direction `rounding` (ROUND_FLOOR or ROUND_CEILING)."""
    if value == 0 or digits <= 0 or significant_digits(value) <= digits:
        return value
    exponent = value.adjusted() - digits + 1
    return value.quantize(Decimal(1).scaleb(exponent), rounding=rounding)


def is_multiple(value: Decimal, step: Decimal) -> bool:
    """Whether `value` lies on the grid of `step` exactly (always, when step is not positive: no grid)."""
    if step <= 0:
        return True
    try:
        return value % step == 0
    except InvalidOperation:  # the quotient has more digits than the context holds: not on any sensible grid
        return False


def significant_digits(value: Decimal) -> int:
    """How many significant digits `value` has, trailing zeros not counted (Decimal("0.0120") has 2)."""
    if value == 0:
        return 0
    return len(value.normalize().as_tuple().digits)


def plain(value: Decimal) -> str:
    """A Decimal as a person writes it: no exponent, no trailing zeros (1E-5 -> 0.00001, 1.500 -> 1.5)."""
    return format(value.normalize(), "f")


# ---- venue fit ------------------------------------------------------------------------------------------
def venue_fit_problems(terms: VenueTerms, *, side: Side, quantity: Decimal, price: Decimal | None = None,
                       stop_price: Decimal | None = None,
                       reference_price: Decimal | None = None) -> list[tuple[str, str]]:
    """Every rule of `terms` the order's terms break, as (field, problem) pairs naming the rule; empty when the
    venue takes the order as it is. Nothing is rounded: a value off the grid is a problem, with the nearest
    values that would do.

    The notional is valued at the limit `price`, else at the `stop_price` (a stop-market order), else at
    `reference_price` (a market order: e.g. the mid now); with none of them it is not checked.
    """
    v = terms.venue
    problems: list[tuple[str, str]] = []
    q = quantity
    if terms.lot_size > 0 and not is_multiple(q, terms.lot_size):
        below, above = floor_to(q, terms.lot_size), ceil_to(q, terms.lot_size)
        near = f"{plain(below)} or {plain(above)}" if below > 0 else plain(above)
        problems.append(("quantity", f"{plain(q)} is not a multiple of {v}'s lot size {plain(terms.lot_size)} "
                                     f"({near} would be)"))
    q_digits = terms.quantity_significant_digits
    if q_digits is not None and significant_digits(q) > q_digits:
        problems.append(("quantity", f"{plain(q)} has more than the {q_digits} significant digits {v} allows in "
                                     f"a quantity"))
    if q < terms.min_quantity:
        problems.append(("quantity", f"{plain(q)} is below {v}'s minimum quantity {plain(terms.min_quantity)}"))
    if terms.max_quantity is not None and terms.max_quantity > 0 and q > terms.max_quantity:
        problems.append(("quantity", f"{plain(q)} is above {v}'s maximum quantity {plain(terms.max_quantity)}"))

    for name, value in (("price", price), ("stop_price", stop_price)):
        if value is None:
            continue
        if terms.tick_size > 0 and not is_multiple(value, terms.tick_size):
            below, above = floor_to(value, terms.tick_size), ceil_to(value, terms.tick_size)
            if name == "price":  # the passive neighbour: never a more aggressive limit than the one sent
                near = f"{plain(below if side is Side.BUY else above)} would be, for a {side.value}"
            else:
                near = f"{plain(below)} or {plain(above)} would be"
            problems.append((name, f"{plain(value)} is not a multiple of {v}'s tick size {plain(terms.tick_size)} "
                                   f"({near})"))
        p_digits = terms.price_significant_digits
        if p_digits is not None and significant_digits(value) > p_digits:
            problems.append((name, f"{plain(value)} has more than the {p_digits} significant digits {v} allows in "
                                   f"a price"))

    at = price if price is not None else stop_price if stop_price is not None else reference_price
    if at is not None and at > 0:
        notional = q * at
        if terms.min_notional is not None and notional < terms.min_notional:
            problems.append(("quantity", f"{plain(q)} at {plain(at)} is a notional of {plain(notional)}, below "
                                         f"{v}'s minimum notional {plain(terms.min_notional)}"))
        if terms.max_notional is not None and terms.max_notional > 0 and notional > terms.max_notional:
            problems.append(("quantity", f"{plain(q)} at {plain(at)} is a notional of {plain(notional)}, above "
                                         f"{v}'s maximum notional {plain(terms.max_notional)}"))
    return problems


# ---- across venues --------------------------------------------------------------------------------------
def consolidated_mid(books: Mapping[str, Book]) -> Decimal | None:
    """Mid of the best bid and best ask across all venues (None when either side is empty everywhere)."""
    bids = [b.bids[0].price for b in books.values() if b.bids]
    asks = [b.asks[0].price for b in books.values() if b.asks]
    if not bids or not asks:
        return None
    return (max(bids) + min(asks)) / 2
