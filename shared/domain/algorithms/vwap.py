"""VWAP: an order spread over a time window in proportion to the market's expected volume.

The same schedule as TWAP (``twap.ScheduledPlanner``: cumulative targets, carry-over, a final catch-up, taker or
maker children) with a different curve: the cumulative target of slice k is ``quantity * V((k + 1) / slices)``,
where V is the cumulative share of the volume profile (relative volume per equal time bucket over the window),
interpolated linearly within a bucket, so the number of slices need not match the profile's length.

Which profile: the ``profile`` parameter when given (the person asked for it), else the market's
``volume_profile`` from the snapshot, else ``DEFAULT_PROFILE``, a U shape (heavier at the start and the end of the
window, as intraday volume usually is).

``max_participation`` (e.g. 0.1): when the snapshot knows the market volume traded since the previous slice,
no slice (the catch-up included) sends more than ``max_participation`` times it; what the cap holds back is
carried into later slices, and whatever the catch-up cannot send under the cap stays unfilled (said in
``skipped``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Self

from pydantic import model_validator

from shared.domain.algorithms.base import MarketNeeds
from shared.domain.algorithms.params import number, weights
from shared.domain.algorithms.twap import ScheduledPlanner, WindowParams
from shared.domain.market import ZERO, MarketSnapshot

DEFAULT_PROFILE: tuple[Decimal, ...] = tuple(Decimal(w) for w in (
    "1.60", "1.25", "1.05", "0.90", "0.80", "0.75", "0.75", "0.80", "0.90", "1.05", "1.30", "1.85"))


class VwapParams(WindowParams):
    """VWAP's algorithm_params: TWAP's window, with slice sizes following a volume profile (``profile``: the given
    relative weights; else the venue's recent volume; else a U-shaped default), and ``max_participation``."""

    profile: weights(1000, description="relative volume per equal time bucket of the window") | None = None
    max_participation: number(0, 1, lo_open=True, description="no slice sends more than this share of the volume "
                                                              "traded since the previous slice") | None = None

    def default_slices(self) -> int:
        return len(self.profile or DEFAULT_PROFILE)


def usable(profile: tuple[Decimal, ...]) -> bool:
    return len(profile) > 0 and all(w >= 0 for w in profile) and sum(profile, ZERO) > 0


def cumulative(profile: tuple[Decimal, ...], k: int, n: int) -> Decimal:
    """The share of the profile's volume in the first (k + 1) / n of the window (exactly 1 at the end)."""
    m = len(profile)
    if k + 1 >= n:
        return Decimal(1)
    pos = Decimal((k + 1) * m) / Decimal(n)
    i = int(pos)
    done = sum(profile[:i], ZERO) + (profile[i] * (pos - i) if i < m else ZERO)
    return done / sum(profile, ZERO)


class VwapPlanner(ScheduledPlanner):
    name = "vwap"

    @property
    def needs(self) -> MarketNeeds:
        return MarketNeeds(traded_volume=self.params.max_participation is not None,
                           profile_window_ms=self.params.duration_s * 1000 if self.params.profile is None else None)

    def profile(self, market: MarketSnapshot) -> tuple[Decimal, ...]:
        if self.params.profile is not None:
            return self.params.profile
        profile = market.volume_profile
        if profile is not None and usable(profile):
            return profile
        return DEFAULT_PROFILE

    def fraction(self, k: int, n: int, market: MarketSnapshot) -> Decimal:
        return cumulative(self.profile(market), k, n)

    def cap(self, market: MarketSnapshot) -> tuple[Decimal | None, str | None]:
        mp = self.params.max_participation
        if mp is None or market.traded_volume is None:
            return None, None
        traded = market.traded_volume
        return mp * traded, f"max_participation {mp} of {traded} traded since the last slice"
