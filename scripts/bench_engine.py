"""Benchmark the simulated exchange's matching engine, in process, on a realistic order mix.

    python scripts/bench_engine.py [--ops N] [--runs R]

The mix, generated up front from a fixed seed around a slowly wandering mid on BTCUSDT: 60% passive GTC limit
orders within 20 ticks of the mid, 25% cancels of recently placed orders (some already filled: those count,
and fail with -2011 as on Binance), 10% marketable IOC limits and 5% MARKET orders, spread over 8 accounts
(so self-trade prevention happens too). The book starts with the background market's ladder. Every operation
goes through the public ``Engine`` API with ``Decimal`` arguments and returns views, as the HTTP layer will.

Prints operations per second (the median of ``--runs`` timed runs, ``time.perf_counter``), the same loop with
the engine replaced by a no-op (the harness's own cost) and their ratio. ``run(n)`` returns the median rate.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.simulator.engine import Engine  # noqa: E402
from shared.simulator.market import BTCUSDT, BTCUSDT_MARKET, Market  # noqa: E402
from shared.simulator.model import ExchangeError, OrderType, Side, TimeInForce  # noqa: E402

SEED = 7
ACCOUNTS = [f"bench-{i}" for i in range(8)]
PLACE, CANCEL = 0, 1
Op = tuple[Any, ...]


def make_ops(n: int, seed: int = SEED) -> list[Op]:
    """``n`` operations: (PLACE, args, kwargs) or (CANCEL, account, how many placements back)."""
    rng = random.Random(seed)
    tick, step = BTCUSDT.tick_size, BTCUSDT.step_size
    mid = int(BTCUSDT_MARKET.mid / tick)
    ops: list[Op] = []
    for _ in range(n):
        mid += rng.choice((-1, 0, 0, 0, 0, 0, 0, 1))
        account = rng.choice(ACCOUNTS)
        is_buy = rng.random() < 0.5
        side = Side.BUY if is_buy else Side.SELL
        sign = 1 if is_buy else -1
        quantity = step * rng.randint(20, 2000)
        roll = rng.random()
        if roll < 0.60:
            price = tick * (mid - sign * rng.randint(1, 20))
            ops.append((PLACE, (account, "BTCUSDT", side, OrderType.LIMIT),
                        {"quantity": quantity, "price": price, "time_in_force": TimeInForce.GTC}))
        elif roll < 0.85:
            ops.append((CANCEL, account, rng.randint(1, 50)))
        elif roll < 0.95:
            price = tick * (mid + sign * rng.randint(0, 5))
            ops.append((PLACE, (account, "BTCUSDT", side, OrderType.LIMIT),
                        {"quantity": quantity, "price": price, "time_in_force": TimeInForce.IOC}))
        else:
            ops.append((PLACE, (account, "BTCUSDT", side, OrderType.MARKET), {"quantity": quantity}))
    return ops


def fresh_engine() -> Engine:
    """BTCUSDT with the background market's ladder in the book and well-funded bench accounts."""
    engine = Engine()
    engine.add_symbol(BTCUSDT)
    Market(engine, [BTCUSDT_MARKET], seed=SEED).step(0)
    for account in ACCOUNTS:
        engine.deposit(account, "BTC", Decimal(10) ** 6)
        engine.deposit(account, "USDT", Decimal(10) ** 11)
    return engine


def drive(ops: list[Op], place: Callable[..., Any], cancel: Callable[..., Any]) -> float:
    """Run the operations through ``place`` / ``cancel``; returns the elapsed seconds."""
    placed: list[tuple[str, int]] = []  # (account, order id) of every accepted order
    start = time.perf_counter()
    for now_ms, op in enumerate(ops, start=1):
        try:
            if op[0] == PLACE:
                order = place(*op[1], now_ms=now_ms, **op[2]).order
                placed.append((op[1][0], order.order_id))
            elif len(placed) >= op[2]:
                account, order_id = placed[-op[2]]
                cancel(account, "BTCUSDT", now_ms=now_ms, order_id=order_id)
        except ExchangeError:
            pass
    return time.perf_counter() - start


_NOOP_PLACEMENT = SimpleNamespace(order=SimpleNamespace(order_id=0))


def _noop_place(*args: Any, **kwargs: Any) -> Any:
    return _NOOP_PLACEMENT


def _noop_cancel(*args: Any, **kwargs: Any) -> None:
    return None


def engine_seconds(ops: list[Op], runs: int = 3) -> float:
    """Median seconds to run ``ops`` through a fresh engine."""
    times = []
    for _ in range(runs):
        engine = fresh_engine()
        times.append(drive(ops, engine.place_order, engine.cancel_order))
    return statistics.median(times)


def baseline_seconds(ops: list[Op], runs: int = 3) -> float:
    """Median seconds to run ``ops`` through the same loop with no-ops in place of the engine."""
    return statistics.median(drive(ops, _noop_place, _noop_cancel) for _ in range(runs))


def run(n: int) -> float:
    """Operations (orders and cancels) per second through the engine: the median of 3 runs."""
    return n / engine_seconds(make_ops(n))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    ops = make_ops(args.ops)
    engine_s, noop_s = engine_seconds(ops, args.runs), baseline_seconds(ops, args.runs)
    print(f"engine:   {args.ops / engine_s:>12,.0f} orders/s  ({args.ops:,} operations, median of {args.runs})")
    print(f"baseline: {args.ops / noop_s:>12,.0f} orders/s  (same loop, no-op engine)")
    print(f"ratio:    {engine_s / noop_s:>12.1f} x the loop's own cost")


if __name__ == "__main__":
    main()
