"""The integer order book: price-time ordering, level aggregation, removal and the non-mutating sweep."""

from __future__ import annotations

from dataclasses import dataclass

from shared.simulator.book import Book


@dataclass
class Resting:
    order_id: int
    account: str
    price: int
    remaining: int


def test_best_level_first_and_arrival_order_within_a_level() -> None:
    book = Book()
    for order in (Resting(1, "a", 100, 5), Resting(2, "b", 101, 5), Resting(3, "c", 101, 7), Resting(4, "d", 99, 1)):
        book.add(order, is_bid=True)
    best = book.bids.best_within(None)
    assert best is not None and best.price == 101 and best.qty == 12
    assert best.head().order_id == 2
    assert book.bids.top(3) == [(101, 12), (100, 5), (99, 1)]


def test_asks_ascend_and_limit_bounds_what_a_taker_reaches() -> None:
    book = Book()
    book.add(Resting(1, "a", 105, 2), is_bid=False)
    book.add(Resting(2, "a", 103, 2), is_bid=False)
    assert book.asks.best_price() == 103
    assert book.asks.best_within(102) is None
    level = book.asks.best_within(103)
    assert level is not None and level.price == 103


def test_fill_and_remove_keep_levels_consistent() -> None:
    book = Book()
    first, second = Resting(1, "a", 100, 5), Resting(2, "b", 100, 3)
    book.add(first, is_bid=False)
    book.add(second, is_bid=False)
    book.fill(first, is_bid=False, lots=2)
    assert first.remaining == 3
    assert book.asks.top(1) == [(100, 6)]
    book.fill(first, is_bid=False, lots=3)
    level = book.asks.best_within(None)
    assert level is not None and level.head() is second and level.qty == 3
    book.remove(second, is_bid=False)
    assert book.asks.best_within(None) is None
    assert book.update_id == 5


def test_sweep_counts_liquidity_up_to_the_limit_and_stops_at_own_orders() -> None:
    book = Book()
    book.add(Resting(1, "a", 100, 2), is_bid=False)
    book.add(Resting(2, "b", 101, 3), is_bid=False)
    book.add(Resting(3, "me", 102, 4), is_bid=False)
    book.add(Resting(4, "c", 103, 4), is_bid=False)
    assert book.asks.sweep(None, 4, "x") == (4, 2 * 100 + 2 * 101)
    assert book.asks.sweep(100, 4, "x") == (2, 200)
    assert book.asks.sweep(None, 20, "me") == (5, 200 + 303)
    assert book.asks.sweep(None, 20, "x") == (13, 200 + 303 + 408 + 412)
    assert book.asks.top(10) == [(100, 2), (101, 3), (102, 4), (103, 4)]

