"""Venue profiles: what makes one simulated exchange differ from another.

Every simulated venue speaks Binance's spot dialect (see ``server``) and lists BTCUSDT and ETHUSDT; a profile
sets what a router can tell apart:

- binance:  maker 0.001,  taker 0.001,  0 ms, seed 101, mids 50,000 / 3,000; deep book: 40 levels a side,
  about 1.0 BTC / 10 ETH a level near the touch, spread 2 ticks, the busiest taker flow.
- coinbase: maker 0.0006, taker 0.0011, 2 ms, seed 202, mids 50,012.50 / 3,001.20; thin book: 12 levels, about
  0.15 BTC / 1.5 ETH a level, spread 6 / 4 ticks on a wider grid, light taker flow.
- kraken:   maker 0.0008, taker 0.00105, 1 ms, seed 303, mids 49,991 / 2,999.40; medium book: 25 levels, about
  0.5 BTC / 5 ETH a level, spread 4 / 3 ticks.

Fees are those of a professional (volume-tier) account on each venue: taker fees within a basis point of each
other, so a venue's better price can outweigh its fee and routing across venues pays. (At retail tiers, 10 / 26 /
60 bps, the cheapest venue wins every split and the SmartRouter rightly sends everything there.)

Latency is added by the server to every exchange request (not to ``/admin``). ``profile(name).build()`` returns
a fresh ``(Engine, Market)`` pair (books empty until the first ``market.step``); the seed can be overridden.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from shared.simulator.engine import Engine
from shared.simulator.market import BTCUSDT, BTCUSDT_MARKET, ETHUSDT, ETHUSDT_MARKET, Market, MarketConfig
from shared.simulator.model import Fees, SymbolConfig

D = Decimal


@dataclass(frozen=True)
class VenueProfile:
    """One simulated venue: its fees, added latency, default seed, listed symbols and background market."""

    name: str
    fees: Fees
    latency_ms: float
    seed: int
    markets: tuple[MarketConfig, ...]
    symbols: tuple[SymbolConfig, ...] = (BTCUSDT, ETHUSDT)

    def build(self, seed: int | None = None) -> tuple[Engine, Market]:
        """A new engine listing the profile's symbols, with its fees, and the background market driving it."""
        engine = Engine(self.fees)
        for symbol in self.symbols:
            engine.add_symbol(symbol)
        return engine, Market(engine, self.markets, seed=self.seed if seed is None else seed)


PROFILES: dict[str, VenueProfile] = {
    p.name: p
    for p in (
        VenueProfile(
            name="binance",
            fees=Fees(maker=D("0.001"), taker=D("0.001")),
            latency_ms=0.0,
            seed=101,
            markets=(
                replace(BTCUSDT_MARKET, levels=40, level_size=D("1.0"), taker_rate=0.8),
                replace(ETHUSDT_MARKET, levels=40, level_size=D("10"), taker_rate=0.8),
            ),
        ),
        VenueProfile(
            name="coinbase",
            fees=Fees(maker=D("0.0006"), taker=D("0.0011")),
            latency_ms=2.0,
            seed=202,
            markets=(
                replace(BTCUSDT_MARKET, mid=D("50012.50"), spread_ticks=6, levels=12, level_spacing_ticks=25,
                        level_size=D("0.15"), size_decay=0.9, taker_rate=0.3, taker_size=D("0.02")),
                replace(ETHUSDT_MARKET, mid=D("3001.20"), spread_ticks=4, levels=12, level_spacing_ticks=5,
                        level_size=D("1.5"), size_decay=0.9, taker_rate=0.3, taker_size=D("0.2")),
            ),
        ),
        VenueProfile(
            name="kraken",
            fees=Fees(maker=D("0.0008"), taker=D("0.00105")),
            latency_ms=1.0,
            seed=303,
            markets=(
                replace(BTCUSDT_MARKET, mid=D("49991"), spread_ticks=4, levels=25, level_spacing_ticks=15,
                        level_size=D("0.5"), taker_rate=0.5),
                replace(ETHUSDT_MARKET, mid=D("2999.40"), spread_ticks=3, levels=25, level_spacing_ticks=3,
                        level_size=D("5"), taker_rate=0.5),
            ),
        ),
    )
}


def profile(name: str) -> VenueProfile:
    """The named profile; an unknown name is a ValueError that lists the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown venue {name!r}; known venues: {', '.join(sorted(PROFILES))}") from None
