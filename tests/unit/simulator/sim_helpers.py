"""Helpers shared by the simulated exchange's tests: a small engine, order shortcuts and invariant checks."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from shared.simulator.engine import Engine
from shared.simulator.model import Fees, OrderType, Placement, Side, SymbolConfig, TimeInForce

D = Decimal
SYMBOL = "BTCUSDT"
CONFIG = SymbolConfig(SYMBOL, "BTC", "USDT", tick_size=D("0.01"), step_size=D("0.001"), min_qty=D("0.001"),
                      min_notional=D("10"))
FEES = Fees(maker=D("0.001"), taker=D("0.002"))


def new_engine(**kwargs: object) -> Engine:
    """BTCUSDT (tick 0.01, step 0.001, min notional 10); alice, bob and carol hold 100 BTC and 10,000,000 USDT."""
    engine = Engine(FEES, **kwargs)  # type: ignore[arg-type]
    engine.add_symbol(CONFIG)
    for account in ("alice", "bob", "carol"):
        engine.deposit(account, "BTC", D("100"))
        engine.deposit(account, "USDT", D("10000000"))
    return engine


def limit(engine: Engine, account: str, side: Side, qty: str, price: str, tif: TimeInForce = TimeInForce.GTC,
          now_ms: int = 1, **kwargs: object) -> Placement:
    return engine.place_order(account, SYMBOL, side, OrderType.LIMIT, now_ms=now_ms, quantity=D(qty),
                              price=D(price), time_in_force=tif, **kwargs)  # type: ignore[arg-type]


def market(engine: Engine, account: str, side: Side, qty: str, now_ms: int = 1) -> Placement:
    return engine.place_order(account, SYMBOL, side, OrderType.MARKET, now_ms=now_ms, quantity=D(qty))


def totals(engine: Engine) -> dict[str, Decimal]:
    """Every asset's free + locked over all accounts, plus the fees collected."""
    total: defaultdict[str, Decimal] = defaultdict(Decimal)
    for account in engine.accounts():
        for asset, balance in engine.balances(account).items():
            total[asset] += balance.free + balance.locked
    for asset, fee in engine.fees_collected().items():
        total[asset] += fee
    return {asset: amount for asset, amount in total.items() if amount}


def check_invariants(engine: Engine, expected_totals: dict[str, Decimal]) -> None:
    """Conservation, an uncrossed book that matches the open orders, and locks that match the open orders."""
    assert totals(engine) == expected_totals
    configs = {c.symbol: c for c in engine.symbols()}
    resting: defaultdict[tuple[str, Side, Decimal], Decimal] = defaultdict(Decimal)
    for account in engine.accounts():
        needed: defaultdict[str, Decimal] = defaultdict(Decimal)
        for o in engine.open_orders(account):
            config = configs[o.symbol]
            remaining = o.orig_qty - o.executed_qty
            assert 0 <= o.executed_qty < o.orig_qty
            if o.side is Side.SELL:
                needed[config.base] += remaining
            elif o.price:
                needed[config.quote] += remaining * o.price
            if o.is_working:
                resting[(o.symbol, o.side, o.price)] += remaining
        for asset, balance in engine.balances(account).items():
            assert balance.free >= 0
            assert balance.locked == needed[asset], (account, asset)
        for symbol in configs:
            for o in engine.all_orders(account, symbol, limit=10**9):
                assert o.executed_qty <= o.orig_qty
    for symbol in configs:
        depth = engine.depth(symbol, limit=10**9)
        if depth.bids and depth.asks:
            assert depth.bids[0][0] < depth.asks[0][0]
        in_book = {(symbol, Side.BUY, p): q for p, q in depth.bids} | {(symbol, Side.SELL, p): q for p, q in depth.asks}
        assert in_book == {k: v for k, v in resting.items() if k[0] == symbol}
