"""Market data as the router and the execution algorithms see it: order books, each venue's trading terms for a
symbol, and a snapshot of both across venues at one moment.

Pure: no I/O and no clock (``at_ms`` is epoch milliseconds, passed in). Prices and quantities are Decimal.

Rounding helpers. A quantity is always rounded DOWN to a multiple of the lot (never send more than was meant).
A limit price is rounded to the tick in the PASSIVE direction, so rounding never makes an order more aggressive
than the price it came from: a buy's limit rounds down, a sell's limit rounds up (``round_price``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

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

    def round_quantity(self, quantity: Decimal) -> Decimal:
        return round_quantity(quantity, self.lot_size)

    def round_price(self, side: Side, price: Decimal) -> Decimal:
        return round_price(side, price, self.tick_size)

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


# ---- across venues --------------------------------------------------------------------------------------
def consolidated_mid(books: Mapping[str, Book]) -> Decimal | None:
    """Mid of the best bid and best ask across all venues (None when either side is empty everywhere)."""
    bids = [b.bids[0].price for b in books.values() if b.bids]
    asks = [b.asks[0].price for b in books.values() if b.asks]
    if not bids or not asks:
        return None
    return (max(bids) + min(asks)) / 2
