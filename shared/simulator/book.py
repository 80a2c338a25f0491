"""A price-time-priority limit order book on integers: prices in ticks, quantities in lots.

Each side is a ``SortedDict`` of price levels keyed so that the best level comes first (asks by price, bids by
negated price); a level keeps its resting orders in arrival order (an ``OrderedDict``: O(1) removal from the
middle, O(1) access to the head) together with their total quantity. The book only stores and orders; who may
trade with whom, and at what cost, is the engine's business. ``update_id`` counts every change to the book.
"""

from __future__ import annotations

from collections import OrderedDict
from itertools import islice
from typing import Generic, Protocol, TypeVar

from sortedcontainers import SortedDict


class Resting(Protocol):
    """What the book needs of an order: identity, owner, limit price and the quantity still open."""

    order_id: int
    account: str
    price: int
    remaining: int


R = TypeVar("R", bound=Resting)


class Level(Generic[R]):
    """All resting orders at one price, oldest first, and their total open quantity."""

    __slots__ = ("price", "qty", "orders")

    def __init__(self, price: int) -> None:
        self.price = price
        self.qty = 0
        self.orders: OrderedDict[int, R] = OrderedDict()

    def head(self) -> R:
        """The order with time priority at this price."""
        return next(iter(self.orders.values()))


class BookSide(Generic[R]):
    """One side of the book. Prices are compared in key space (``sign * price``), where smaller is better."""

    __slots__ = ("_levels", "_sign")

    def __init__(self, is_bid: bool) -> None:
        self._levels: SortedDict[int, Level[R]] = SortedDict()
        self._sign = -1 if is_bid else 1

    def best_price(self) -> int | None:
        return self._levels.peekitem(0)[1].price if self._levels else None

    def best_within(self, limit: int | None) -> Level[R] | None:
        """The best level if a taker with this limit price (``None``: any price) can trade with it."""
        if not self._levels:
            return None
        key, level = self._levels.peekitem(0)
        if limit is None or key <= self._sign * limit:
            return level
        return None

    def sweep(self, limit: int | None, lots: int, account: str) -> tuple[int, int]:
        """What a taker of ``lots`` up to ``limit`` would fill here, without touching the book.

        Stops at the first order of ``account`` (self-trade prevention ends the match there). Returns the lots
        fillable and their notional in tick-lots (sum of price * lots).
        """
        filled = notional = 0
        bound = None if limit is None else self._sign * limit
        for key, level in self._levels.items():
            if bound is not None and key > bound:
                break
            for order in level.orders.values():
                if order.account == account:
                    return filled, notional
                take = min(lots - filled, order.remaining)
                filled += take
                notional += take * level.price
                if filled == lots:
                    return filled, notional
        return filled, notional

    def top(self, n: int) -> list[tuple[int, int]]:
        """The best ``n`` levels as (price, total quantity)."""
        return [(level.price, level.qty) for level in islice(self._levels.values(), n)]

    def add(self, order: R) -> None:
        key = self._sign * order.price
        level = self._levels.get(key)
        if level is None:
            level = self._levels[key] = Level(order.price)
        level.orders[order.order_id] = order
        level.qty += order.remaining

    def remove(self, order: R) -> None:
        key = self._sign * order.price
        level = self._levels[key]
        del level.orders[order.order_id]
        level.qty -= order.remaining
        if not level.orders:
            del self._levels[key]

    def fill(self, order: R, lots: int) -> None:
        """Take ``lots`` off a resting order's ``remaining``; the order leaves the book when nothing is left."""
        key = self._sign * order.price
        level = self._levels[key]
        order.remaining -= lots
        level.qty -= lots
        if order.remaining == 0:
            del level.orders[order.order_id]
            if not level.orders:
                del self._levels[key]


class Book(Generic[R]):
    """Both sides of one symbol's book."""

    __slots__ = ("bids", "asks", "update_id")

    def __init__(self) -> None:
        self.bids: BookSide[R] = BookSide(is_bid=True)
        self.asks: BookSide[R] = BookSide(is_bid=False)
        self.update_id = 0

    def side(self, is_bid: bool) -> BookSide[R]:
        return self.bids if is_bid else self.asks

    def add(self, order: R, is_bid: bool) -> None:
        self.side(is_bid).add(order)
        self.update_id += 1

    def remove(self, order: R, is_bid: bool) -> None:
        self.side(is_bid).remove(order)
        self.update_id += 1

    def fill(self, order: R, is_bid: bool, lots: int) -> None:
        self.side(is_bid).fill(order, lots)
        self.update_id += 1
