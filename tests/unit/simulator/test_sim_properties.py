"""Properties over random sequences of orders, cancels, halts and market steps.

After every operation: no asset is created or destroyed (balances + fees are constant), the book is never
crossed and holds exactly the working open orders, no order fills beyond its quantity, every account's locked
balance is what its open orders require, and each new order keeps its type's promise (FOK, IOC, LIMIT_MAKER).
Two runs with the same seed and operations trade identically.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sim_helpers import check_invariants, totals

from shared.simulator.engine import Engine
from shared.simulator.market import Market, MarketConfig
from shared.simulator.model import (
    ExchangeError,
    Fees,
    OrderStatus,
    OrderType,
    Placement,
    Side,
    SymbolConfig,
    TimeInForce,
)

D = Decimal
SYMBOL = "TSTUSDT"
CONFIG = SymbolConfig(SYMBOL, "TST", "USDT", tick_size=D("0.01"), step_size=D("0.01"), min_qty=D("0.01"),
                      min_notional=D("1"))
MARKET = MarketConfig(SYMBOL, mid=D("10"), volatility=0.002, levels=5, level_spacing_ticks=2,
                      level_size=D("5"), size_decay=0.8, taker_rate=1.0, taker_size=D("2"), cancel_rate=0.2)
USERS = ("u0", "u1", "u2")
STOPS = (OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT)

users = st.sampled_from(USERS)
sides = st.sampled_from([Side.BUY, Side.SELL])
offsets = st.integers(-8, 8)  # ticks from the mid
lots = st.integers(1, 500)
operation = st.one_of(
    st.tuples(st.just("limit"), users, sides, offsets, lots, st.sampled_from(list(TimeInForce))),
    st.tuples(st.just("maker"), users, sides, offsets, lots),
    st.tuples(st.just("market"), users, sides, lots),
    st.tuples(st.just("quote"), users, st.integers(50, 5000)),
    st.tuples(st.just("stop"), users, sides, st.sampled_from(STOPS), offsets, offsets, lots),
    st.tuples(st.just("cancel"), users, st.integers(0, 1000)),
    st.tuples(st.just("halt"), st.sampled_from([True, False, False, False])),  # mostly lifts a halt
    st.tuples(st.just("step")),
)
operations = st.lists(operation, min_size=10, max_size=40)


def build(seed: int) -> tuple[Engine, Market]:
    """A toy symbol around 10 USDT, a lively background market, and three users with modest balances."""
    engine = Engine(Fees(maker=D("0.001"), taker=D("0.002")), history_limit=20)
    engine.add_symbol(CONFIG)
    market = Market(engine, [MARKET], seed=seed)
    market.step(0)
    for user in USERS:
        engine.deposit(user, "TST", D("20"))
        engine.deposit(user, "USDT", D("150"))
    return engine, market


def order_request(op: tuple[Any, ...], mid: Decimal) -> dict[str, Any] | None:
    """``place_order`` arguments for an order operation (None for the others)."""
    kind, *args = op
    tick, step = CONFIG.tick_size, CONFIG.step_size
    if kind == "limit":
        user, side, offset, n, tif = args
        return {"account": user, "side": side, "order_type": OrderType.LIMIT, "quantity": step * n,
                "price": mid + tick * offset, "time_in_force": tif}
    if kind == "maker":
        user, side, offset, n = args
        return {"account": user, "side": side, "order_type": OrderType.LIMIT_MAKER, "quantity": step * n,
                "price": mid + tick * offset}
    if kind == "market":
        user, side, n = args
        return {"account": user, "side": side, "order_type": OrderType.MARKET, "quantity": step * n}
    if kind == "quote":
        user, cents = args
        return {"account": user, "side": Side.BUY, "order_type": OrderType.MARKET, "quote_order_qty": D(cents) / 100}
    if kind == "stop":
        user, side, otype, stop_offset, limit_offset, n = args
        priced = {} if otype in (OrderType.STOP_LOSS, OrderType.TAKE_PROFIT) else {
            "price": mid + tick * limit_offset, "time_in_force": TimeInForce.GTC}
        return {"account": user, "side": side, "order_type": otype, "quantity": step * n,
                "stop_price": mid + tick * stop_offset, **priced}
    return None


def check_outcome(request: dict[str, Any], placed: Placement) -> None:
    """What the order type promises: FOK all or nothing, IOC and MARKET never rest, LIMIT_MAKER never takes."""
    order, filled = placed.order, sum(f.qty for f in placed.fills)
    assert filled == order.executed_qty <= order.orig_qty
    if request.get("time_in_force") is TimeInForce.FOK:
        assert order.status is OrderStatus.FILLED or (order.status is OrderStatus.EXPIRED and not filled)
    if request.get("time_in_force") is TimeInForce.IOC or request["order_type"] is OrderType.MARKET:
        assert order.status not in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)
    if request["order_type"] is OrderType.LIMIT_MAKER:
        assert order.status is OrderStatus.NEW and not filled


def apply(engine: Engine, market: Market, op: tuple[Any, ...], now_ms: int) -> None:
    """Run one operation; a refusal (ExchangeError) is a legitimate outcome."""
    kind, *args = op
    try:
        request = order_request(op, market.mid(SYMBOL))
        if request is not None:
            check_outcome(request, engine.place_order(symbol=SYMBOL, now_ms=now_ms, **request))
        elif kind == "cancel":
            user, pick = args
            orders = engine.all_orders(user, SYMBOL)
            if orders:
                engine.cancel_order(user, SYMBOL, order_id=orders[pick % len(orders)].order_id, now_ms=now_ms)
        elif kind == "halt":
            engine.set_halted(SYMBOL, args[0])
        else:
            market.step(now_ms)
    except ExchangeError:
        pass


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32), ops=operations)
def test_invariants_hold_after_every_operation(seed: int, ops: list[tuple[Any, ...]]) -> None:
    engine, market = build(seed)
    expected = totals(engine)
    check_invariants(engine, expected)
    for i, op in enumerate(ops, start=1):
        apply(engine, market, op, now_ms=i * 100)
        check_invariants(engine, expected)


def snapshot(engine: Engine) -> tuple[object, ...]:
    accounts = engine.accounts()
    return (
        [engine.my_trades(a, SYMBOL, limit=10**9) for a in accounts],
        [engine.balances(a) for a in accounts],
        [engine.all_orders(a, SYMBOL, limit=10**9) for a in accounts],
        engine.depth(SYMBOL, limit=10**9),
        engine.fees_collected(),
    )


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32), ops=operations)
def test_same_seed_and_operations_give_the_same_trades(seed: int, ops: list[tuple[Any, ...]]) -> None:
    runs = []
    for _ in range(2):
        engine, market = build(seed)
        for i, op in enumerate(ops, start=1):
            apply(engine, market, op, now_ms=i * 100)
        runs.append(snapshot(engine))
    assert runs[0] == runs[1]
