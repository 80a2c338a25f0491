"""Slippage bounds: the worst price a child order may use, relative to a reference mid.

Pure. Every child an algorithm sends is bounded: a market child becomes an IOC limit at the collar, a limit
beyond the collar is capped at it, and a child whose only executable prices are beyond the collar is not sent
(the planner says why in ``SliceDecision.skipped``).

Which reference: when the order sets ``max_slippage_bps``, the bound is that many bps from the ARRIVAL mid (the
mid when the order arrived; the current mid when the arrival mid is unknown): a bound on the whole order's
slippage. When it does not, the algorithm's ``default_collar_bps`` (50 unless set) applies from the CURRENT mid
at each slice: a guard against sweeping a thin book, not a bound on the order's drift.

The collar is rounded to the tick passively (a buy's down, a sell's up), so rounding never breaches it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from shared.domain.market import round_price
from shared.domain.orders import Side

DEFAULT_COLLAR_BPS = Decimal(50)
_BPS = Decimal(10_000)


def collar(side: Side, reference_mid: Decimal, max_slippage_bps: Decimal) -> Decimal:
    """The worst acceptable price: `bps` above the reference for a buy, below it for a sell (not rounded)."""
    shift = reference_mid * max_slippage_bps / _BPS
    return reference_mid + shift if side is Side.BUY else reference_mid - shift


@dataclass(frozen=True)
class Bound:
    """A slippage bound: `bps` from `reference` (the mid named by `source`)."""

    reference: Decimal
    bps: Decimal
    source: str  # "arrival mid" or "current mid"

    def price(self, side: Side, tick: Decimal) -> Decimal:
        return round_price(side, collar(side, self.reference, self.bps), tick)

    def describe(self, side: Side, cap: Decimal) -> str:
        return f"{cap} ({self.bps} bps {'above' if side is Side.BUY else 'below'} the {self.source} {self.reference})"


def bound_for(max_slippage_bps: Decimal | None, arrival_mid: Decimal | None, current_mid: Decimal | None,
              default_collar_bps: Decimal = DEFAULT_COLLAR_BPS) -> Bound | None:
    """The bound a child must respect (see the module doc for which reference); None with no reference mid."""
    if max_slippage_bps is not None:
        if arrival_mid is not None:
            return Bound(arrival_mid, max_slippage_bps, "arrival mid")
        if current_mid is not None:
            return Bound(current_mid, max_slippage_bps, "current mid")
        return None
    if current_mid is None:
        return None
    return Bound(current_mid, default_collar_bps, "current mid")
