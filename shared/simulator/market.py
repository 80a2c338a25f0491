"""A seeded background market: the other participants that keep each symbol's book alive, deterministically.

Each ``step(now_ms)``, for every configured symbol in order:

1. the mid price takes a random-walk step (Gaussian, relative standard deviation ``volatility``), kept inside
   the symbol's price range;
2. a market maker re-quotes a ladder of ``levels`` bids and ``levels`` asks: the touch ``spread_ticks`` apart
   around the mid, deeper levels on a fixed grid every ``level_spacing_ticks`` (so a small move only changes
   the levels near the touch), sizes decaying with depth by ``size_decay``. Quotes that left the ladder are
   cancelled, each surviving quote is pulled with probability ``cancel_rate`` (it goes to the back of the
   queue when re-posted), and missing levels are posted as GTC limits. A new quote that crosses a resting
   order trades with it: that is how the price moving through a resting order fills it;
3. a taker sends a Poisson(``taker_rate``) number of MARKET orders, either side with equal odds, sizes
   exponentially distributed with mean ``taker_size``: a resting order at the touch fills as flow reaches it.

The maker and the taker are separate accounts, so self-trade prevention never stops the taker's flow at the
maker's quotes; both are funded with ``funding`` of every asset, which is effectively unlimited. All randomness
comes from one ``random.Random(seed)``: the same seed and the same calls give the same trades.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from shared.simulator.engine import Engine
from shared.simulator.model import Fees, OrderStatus, OrderType, Side, SymbolConfig, TimeInForce


@dataclass(frozen=True)
class MarketConfig:
    """How the background market trades one symbol.

    ``mid``: starting mid price; ``volatility``: standard deviation of the mid's relative change per step;
    ``spread_ticks``: best ask - best bid as quoted; ``levels``: quotes per side; ``level_spacing_ticks``: grid of
    the levels behind the touch; ``level_size``: mean size at the touch (base asset), ``size_decay``: factor per
    level deeper; ``taker_rate``: mean MARKET orders per step; ``taker_size``: their mean size (base asset);
    ``cancel_rate``: chance per step that a quote is pulled and re-posted.
    """

    symbol: str
    mid: Decimal
    volatility: float = 0.00001
    spread_ticks: int = 2
    levels: int = 25
    level_spacing_ticks: int = 10
    level_size: Decimal = Decimal("0.5")
    size_decay: float = 0.95
    taker_rate: float = 0.5
    taker_size: Decimal = Decimal("0.05")
    cancel_rate: float = 0.05


BTCUSDT = SymbolConfig("BTCUSDT", "BTC", "USDT", tick_size=Decimal("0.01"), step_size=Decimal("0.00001"),
                       min_qty=Decimal("0.00001"), min_notional=Decimal("5"))
ETHUSDT = SymbolConfig("ETHUSDT", "ETH", "USDT", tick_size=Decimal("0.01"), step_size=Decimal("0.0001"),
                       min_qty=Decimal("0.0001"), min_notional=Decimal("5"))
BTCUSDT_MARKET = MarketConfig("BTCUSDT", mid=Decimal("50000"))
ETHUSDT_MARKET = MarketConfig("ETHUSDT", mid=Decimal("3000"), level_spacing_ticks=2, level_size=Decimal("5"),
                              taker_size=Decimal("0.5"))


class _Quoter:
    """The background market's state for one symbol, in ticks and lots."""

    def __init__(self, symbol: SymbolConfig, config: MarketConfig) -> None:
        self.symbol = symbol
        self.config = config
        self.tick, self.step = symbol.tick_size, symbol.step_size
        self.mid = float(config.mid / symbol.tick_size)  # ticks
        reach = config.spread_ticks + (config.levels + 1) * config.level_spacing_ticks + 2
        self.mid_range = (float(reach), float(symbol.max_price / symbol.tick_size) - reach)
        self.level_lots = float(config.level_size / symbol.step_size)
        self.taker_lots = float(config.taker_size / symbol.step_size)
        self.max_lots = int(symbol.max_qty / symbol.step_size)
        self.quotes: dict[int, tuple[bool, int]] = {}  # maker's open order id -> (is_buy, price in ticks)

    def min_lots(self) -> int:
        """The smallest size worth sending: LOT_SIZE's minimum, and twice the minimum notional at the mid."""
        lot_value = self.mid * float(self.tick * self.step)
        by_notional = math.ceil(2 * float(self.symbol.min_notional) / lot_value)
        return max(int(self.symbol.min_qty / self.step), by_notional)

    def ladder(self) -> tuple[list[int], list[int]]:
        """Target bid and ask prices, best first."""
        c = self.config
        bid0 = math.floor(self.mid - c.spread_ticks / 2)
        ask0 = bid0 + c.spread_ticks
        g = c.level_spacing_ticks
        first_bid, first_ask = (bid0 - 1) // g * g, (ask0 // g + 1) * g
        bids = [bid0] + [first_bid - i * g for i in range(c.levels - 1)]
        asks = [ask0] + [first_ask + i * g for i in range(c.levels - 1)]
        return bids, asks


def _poisson(rng: random.Random, rate: float) -> int:
    """A Poisson draw (Knuth's method; fine for the small rates used here)."""
    threshold, k, p = math.exp(-rate), 0, rng.random()
    while p > threshold:
        k += 1
        p *= rng.random()
    return k


class Market:
    """The other participants of a simulated exchange; call ``step(now_ms)`` to let them act."""

    def __init__(
        self, engine: Engine, configs: Sequence[MarketConfig], *, seed: int, maker: str = "sim-maker",
        taker: str = "sim-taker", funding: Decimal = Decimal(10) ** 12,
    ) -> None:
        self._engine = engine
        self._rng = random.Random(seed)
        self._quoters = {c.symbol: _Quoter(engine.symbol_config(c.symbol), c) for c in configs}
        self.maker, self.taker = maker, taker
        assets = sorted({a for q in self._quoters.values() for a in (q.symbol.base, q.symbol.quote)})
        for account in (maker, taker):
            for asset in assets:
                engine.deposit(account, asset, funding)

    def mid(self, symbol: str) -> Decimal:
        """The current mid price, rounded to the tick."""
        q = self._quoters[symbol]
        return q.tick * round(q.mid)

    def step(self, now_ms: int) -> None:
        """Move every mid, re-quote every ladder and send the taker flow (halted symbols only move their mid)."""
        for q in self._quoters.values():
            low, high = q.mid_range
            q.mid = min(high, max(low, q.mid * (1 + q.config.volatility * self._rng.gauss(0.0, 1.0))))
            if self._engine.is_halted(q.symbol.symbol):
                continue
            self._requote(q, now_ms)
            self._take(q, now_ms)

    def _requote(self, q: _Quoter, now_ms: int) -> None:
        engine, rng, symbol = self._engine, self._rng, q.symbol.symbol
        bids, asks = q.ladder()
        wanted = {True: set(bids), False: set(asks)}
        still_open = engine.open_order_ids(self.maker, symbol)
        kept: set[tuple[bool, int]] = set()
        for order_id, (is_buy, price) in list(q.quotes.items()):
            if order_id not in still_open:
                del q.quotes[order_id]
            elif price not in wanted[is_buy] or rng.random() < q.config.cancel_rate:
                engine.cancel_order(self.maker, symbol, order_id=order_id, now_ms=now_ms)
                del q.quotes[order_id]
            else:
                kept.add((is_buy, price))
        min_lots = q.min_lots()
        for is_buy, prices in ((True, bids), (False, asks)):
            for depth, price in enumerate(prices):
                if (is_buy, price) in kept:
                    continue
                size = q.level_lots * q.config.size_decay ** depth * rng.uniform(0.5, 1.5)
                lots = min(q.max_lots, max(min_lots, round(size)))
                placed = engine.place_order(
                    self.maker, symbol, Side.BUY if is_buy else Side.SELL, OrderType.LIMIT, now_ms=now_ms,
                    quantity=q.step * lots, price=q.tick * price, time_in_force=TimeInForce.GTC,
                ).order
                if placed.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED):
                    q.quotes[placed.order_id] = (is_buy, price)

    def _take(self, q: _Quoter, now_ms: int) -> None:
        min_lots = q.min_lots()
        for _ in range(_poisson(self._rng, q.config.taker_rate)):
            side = Side.BUY if self._rng.random() < 0.5 else Side.SELL
            lots = min(q.max_lots, max(min_lots, round(self._rng.expovariate(1 / q.taker_lots))))
            self._engine.place_order(self.taker, q.symbol.symbol, side, OrderType.MARKET, now_ms=now_ms,
                                     quantity=q.step * lots)


def default_exchange(seed: int = 0, fees: Fees = Fees()) -> tuple[Engine, Market]:
    """An engine listing BTCUSDT and ETHUSDT with a background market around 50,000 and 3,000 USDT.

    The books are empty until the first ``market.step(now_ms)``.
    """
    engine = Engine(fees)
    for symbol in (BTCUSDT, ETHUSDT):
        engine.add_symbol(symbol)
    return engine, Market(engine, (BTCUSDT_MARKET, ETHUSDT_MARKET), seed=seed)
