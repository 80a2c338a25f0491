"""The seeded background market: a live, uncrossed, deep book that fills resting orders, deterministically."""

from __future__ import annotations

from decimal import Decimal

from shared.simulator.engine import Engine
from shared.simulator.market import BTCUSDT_MARKET, Market, default_exchange
from shared.simulator.model import OrderStatus, OrderType, Side, TimeInForce

D = Decimal


def run(seed: int, steps: int) -> tuple[Engine, Market]:
    engine, market = default_exchange(seed=seed)
    for i in range(steps):
        market.step(i * 1000)
    return engine, market


def test_books_are_deep_uncrossed_and_tight_after_every_step() -> None:
    engine, market = default_exchange(seed=3)
    tick = engine.symbol_config("BTCUSDT").tick_size
    for i in range(300):
        market.step(i * 1000)
        for symbol in ("BTCUSDT", "ETHUSDT"):
            depth = engine.depth(symbol, limit=1000)
            assert len(depth.bids) >= 20 and len(depth.asks) >= 20
            spread = (depth.asks[0][0] - depth.bids[0][0]) / tick
            assert 1 <= spread <= 2 * BTCUSDT_MARKET.level_spacing_ticks


def test_mids_start_at_the_configured_prices_and_sizes_decay_with_depth() -> None:
    engine, market = run(seed=1, steps=1)
    assert abs(market.mid("BTCUSDT") - 50_000) < 5
    assert abs(market.mid("ETHUSDT") - 3_000) < 1
    bids = engine.depth("BTCUSDT", limit=25).bids
    assert sum(q for _, q in bids[:5]) > sum(q for _, q in bids[-5:])


def test_the_mid_wanders_but_stays_near_its_start() -> None:
    _, market = run(seed=2, steps=1000)
    assert market.mid("BTCUSDT") != 50_000
    assert abs(market.mid("BTCUSDT") / 50_000 - 1) < D("0.02")


def test_a_resting_order_at_the_touch_fills_over_time() -> None:
    engine, market = run(seed=4, steps=1)
    engine.deposit("user", "USDT", D("100000"))
    engine.deposit("user", "BTC", D("1"))
    bid, ask = engine.depth("BTCUSDT", 1).bids[0][0], engine.depth("BTCUSDT", 1).asks[0][0]
    orders = [engine.place_order("user", "BTCUSDT", side, OrderType.LIMIT, now_ms=1000, quantity=D("0.01"),
                                 price=price, time_in_force=TimeInForce.GTC).order.order_id
              for side, price in ((Side.BUY, bid), (Side.SELL, ask))]
    for i in range(2, 300):
        market.step(i * 1000)
    for order_id in orders:
        assert engine.get_order("user", "BTCUSDT", order_id=order_id).status is OrderStatus.FILLED


def test_same_seed_same_trades_other_seed_other_trades() -> None:
    first, _ = run(seed=9, steps=200)
    second, _ = run(seed=9, steps=200)
    other, _ = run(seed=10, steps=200)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        assert first.recent_trades(symbol, 1000) == second.recent_trades(symbol, 1000)
        assert first.depth(symbol, 1000) == second.depth(symbol, 1000)
        assert first.recent_trades(symbol, 1000) != other.recent_trades(symbol, 1000)


def test_a_halted_symbol_is_left_alone() -> None:
    engine, market = run(seed=5, steps=1)
    engine.set_halted("BTCUSDT", True)
    before = engine.depth("BTCUSDT", 1000)
    eth_before = engine.depth("ETHUSDT", 1000)
    market.step(1000)
    assert engine.depth("BTCUSDT", 1000) == before
    assert engine.depth("ETHUSDT", 1000) != eth_before


def test_participants_use_their_own_accounts() -> None:
    engine, market = run(seed=6, steps=50)
    assert set(engine.accounts()) == {market.maker, market.taker}
    assert engine.balances(market.taker)["USDT"].free > 10**11
