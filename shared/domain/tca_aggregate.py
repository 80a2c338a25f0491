"""TCA of many orders: the rows ``tca_row`` publishes, grouped (by algorithm, venue, symbol, side, strategy) and
summed up, so that one can say which algorithm or venue costs less, and how sure that is.

Pure: no I/O, no clock, no global random (the bootstrap draws from ``random.Random`` seeded from ``seed`` and the
group's key). Arithmetic is exact: every value and weight is scaled to an integer (bps have 6 decimals, a notional
is scaled by the power of ten its decimals need) and each figure is rounded once, half-even, at the end: bps to
``BPS`` (1e-6), shares and ratios to ``RATIO`` (1e-9). What cannot be computed is None, never 0.

Decisions, said once:
- Versions: a row is republished with ``version`` + 1 when its markouts are in; of the rows of one ``order_id``
  only the highest version is kept (ties: a ``complete`` row, then a canonical order, so the choice does not
  depend on the input's order). ``count`` is orders, not rows.
- Costs are **notional-weighted** (the row's filled notional): a mean over what was traded, not over tickets. A row
  having a value counts in ``n`` whatever its weight; a row of zero notional (unfilled: it can only have a
  shortfall) weighs nothing, unless every row having the value weighs nothing, in which case they weigh equally
  (so the shortfall of a group of unfilled orders is still their mean).
- Weighted quantile q (median 1/2, p90 9/10): the smallest value whose cumulative weight, values ascending,
  reaches q of the total weight. It is always one of the values (nearest rank). Latencies use the same definition
  with equal weights (the ceil(q*n)-th smallest), in whole ms.
- ``fill_ratio`` is the mean of the orders' fill ratios, each order weighing the same, unfilled ones included
  (quantities of different symbols do not add up). ``fill_ratio_weighted`` weighs each order by what it ordered in
  the quote currency, ``quantity * average_price``: it exists only for orders with a fill (a row has no price for
  an unfilled order), so it is the fill ratio of the orders that traded at all, not of every order.
- The shortfall's parts (delay, execution, opportunity, fees) are costs like the others. A row has all four
  exactly when it has ``shortfall_bps`` (their sum), so over the same rows and weights the parts' means add up to
  the shortfall's mean up to the rounding of each (4 x 1e-6 bps); rows published before the parts were (n lower
  than the shortfall's) break that.
- ``maker_share``: notional-weighted over the rows that have it. ``reject_rate``: rejected orders / orders.
- ``arrival_cost_ci95``: a bootstrap (percentile method) of the notional-weighted mean arrival cost: ``resamples``
  draws, with replacement, of as many rows as have the value and a weight; the interval is the ceil(2.5% R)-th and
  ceil(97.5% R)-th smallest resampled mean. None with fewer than 2 such rows. Each group draws from its own
  ``random.Random`` seeded by sha256 of ``seed`` and its key, and rows are drawn in ``order_id`` order, so the
  result does not depend on the rows' order, the other groups, or ``hash()``.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, Inexact, localcontext
from itertools import chain, islice, repeat
from operator import mul
from typing import Any

GROUP_KEYS = ("algorithm", "venue", "symbol", "side", "strategy_id")
SHORTFALL_PARTS = ("shortfall_delay_bps", "shortfall_execution_bps", "shortfall_opportunity_bps",
                   "shortfall_fees_bps")  # a row has all four iff it has shortfall_bps, their sum exactly
COSTS = ("arrival_cost_bps", "shortfall_bps", *SHORTFALL_PARTS, "interval_vwap_cost_bps", "twap_mid_cost_bps",
         "fees_bps", "markout_pre10s_bps", "markout_1s_bps", "markout_10s_bps", "markout_60s_bps",
         "markout_300s_bps", "router_vs_best_venue_bps", "router_vs_consolidated_bps")
MARKOUTS = {-10: "markout_pre10s_bps", 1: "markout_1s_bps", 10: "markout_10s_bps", 60: "markout_60s_bps",
            300: "markout_300s_bps"}  # horizon (s) -> its column
LATENCIES = ("decision_to_submit_ms", "submit_to_ack_ms", "ack_to_first_fill_ms", "cancel_to_confirm_ms")
MEDIAN, P90 = (1, 2), (9, 10)  # quantiles as fractions
CI_LOW, CI_HIGH = (25, 1000), (975, 1000)
_BPS_PLACES = 6  # BPS = 1e-6
_RATIO_PLACES = 9  # RATIO = 1e-9
_WORDS = 1 << 16  # 16-bit random words: populations up to this size are drawn by table lookup
_CHUNK = 1 << 15  # draws (words) taken from the generator at a time
_EXACT = 80  # digits: Decimal sums and products of the inputs stay exact (Inexact is trapped, never silent)


@dataclass(frozen=True)
class Stat:
    """One cost over a group: ``n`` rows have it; notional-weighted mean, median and p90, in bps."""

    n: int
    mean: Decimal | None
    median: Decimal | None
    p90: Decimal | None


@dataclass(frozen=True)
class Latency:
    """One latency over a group (equal weights): ``n`` rows have it; median and p90 in ms."""

    n: int
    median: int | None
    p90: int | None


@dataclass(frozen=True)
class Group:
    key: dict[str, str]  # group_by column -> value ("" where the row has none)
    count: int  # orders (their latest version)
    notional: Decimal  # sum of filled notional, quote currency
    fill_ratio: Decimal | None  # mean of the orders' fill ratios, equal weights
    fill_ratio_weighted: Decimal | None  # weighted by quantity * average_price: orders with a fill only
    reject_rate: Decimal
    maker_share: Decimal | None  # notional-weighted
    costs: dict[str, Stat]  # every column of COSTS
    markout_curve: dict[int, Decimal | None]  # horizon (s) -> notional-weighted mean markout, bps
    latencies: dict[str, Latency]  # every column of LATENCIES
    arrival_cost_ci95: tuple[Decimal, Decimal] | None


def aggregate(rows: Iterable[Mapping[str, Any]], group_by: Sequence[str] = (), seed: int = 0,
              resamples: int = 1000) -> list[Group]:
    """The groups of ``rows`` (``tca_row`` dicts; the highest version of each order_id only), sorted by key.
    ``group_by`` empty: one group of every row; no rows: no group."""
    group_by = tuple(group_by)
    unknown = [k for k in group_by if k not in GROUP_KEYS]
    if unknown or len(set(group_by)) != len(group_by):
        raise ValueError(f"group_by takes distinct keys among {GROUP_KEYS}, not {group_by}")
    if resamples < 1:
        raise ValueError("resamples must be at least 1")
    with localcontext() as ctx:
        ctx.prec = _EXACT
        ctx.traps[Inexact] = True
        groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
        for row in _latest(rows):
            groups.setdefault(tuple(_text(row.get(k)) for k in group_by), []).append(row)
        return [_group(dict(zip(group_by, key)), groups[key], seed, resamples) for key in sorted(groups)]


# ---- rows ------------------------------------------------------------------------------------------------------

def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _latest(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The highest version of each order_id (then a complete one, then the greatest canonical JSON), by order_id."""
    best: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        order_id = str(row["order_id"])
        kept = best.get(order_id)
        if kept is None or _rank(row) > _rank(kept) or (
                _rank(row) == _rank(kept) and _canonical(row) > _canonical(kept)):
            best[order_id] = row
    return [best[k] for k in sorted(best)]


def _rank(row: Mapping[str, Any]) -> tuple[int, bool]:
    return int(row["version"]), bool(row.get("complete"))


def _canonical(row: Mapping[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, default=str)


def _dec(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, float):
        raise TypeError("a TCA row holds Decimals as strings, not floats")
    d = Decimal(value)
    if not d.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return d


# ---- exact arithmetic ------------------------------------------------------------------------------------------

def _scaled(values: Sequence[Decimal], places: int = _BPS_PLACES) -> tuple[list[int], int]:
    """The values times 10**e as integers, exactly: e = ``places`` when no value has more decimals (the fast path),
    else the most decimal places among them."""
    try:
        return [int(v.scaleb(places).to_integral_exact()) for v in values], places  # Inexact is trapped
    except Inexact:
        e = max(places, max(-int(v.as_tuple().exponent) for v in values))
        return [int(v.scaleb(e)) for v in values], e


def _div_round(num: int, den: int) -> int:
    """num / den rounded half-even to an integer (den > 0)."""
    q, r = divmod(num, den)
    if 2 * r > den or (2 * r == den and q % 2):
        q += 1
    return q


def _units(n: int, places: int) -> Decimal:
    """n * 10**-places as a Decimal with that exponent (a plain 0 for zero, as shared.domain.tca does)."""
    return Decimal(n).scaleb(-places) if n else Decimal(0)


def _weights(weights: Sequence[Decimal]) -> list[int]:
    """Exact integer weights in proportion to the given ones (which are not negative)."""
    if any(w < 0 for w in weights):
        raise ValueError("a weight (notional) is negative")
    return _scaled(weights)[0]


def _split(column: Sequence[Decimal | None], weights: Sequence[int]) -> tuple[list[Decimal], list[int]]:
    """The values a column has and their weights; equal weights when those are all zero."""
    values = [v for v in column if v is not None]
    kept = [w for v, w in zip(column, weights) if v is not None]
    return values, kept if any(kept) else [1] * len(kept)


def _quantile(ordered: Sequence[tuple[int, int]], total: int, q: tuple[int, int]) -> int:
    """The smallest value of the (value, weight) pairs, ascending, whose cumulative weight reaches q of total."""
    num, den = q
    cumulative = 0
    for value, weight in ordered:
        cumulative += weight
        if cumulative * den >= num * total:
            return value
    raise AssertionError("a quantile of at most 1 is always reached")  # pragma: no cover


def _weighted_mean(values: Sequence[Decimal], weights: Sequence[int], places: int) -> Decimal | None:
    if not values:
        return None
    ints, e = _scaled(values, places)
    return _units(_div_round(sum(map(mul, ints, weights)) * 10 ** places, sum(weights) * 10 ** e), places)


def _stat(values: Sequence[Decimal], weights: Sequence[int]) -> Stat:
    """n, weighted mean, median and p90 of values (bps), rounded to BPS."""
    if not values:
        return Stat(0, None, None, None)
    ints, e = _scaled(values)
    total = sum(weights)
    mean = _div_round(sum(map(mul, ints, weights)) * 10 ** _BPS_PLACES, total * 10 ** e)
    ordered = sorted(zip(ints, weights))
    median, p90 = (_div_round(_quantile(ordered, total, q) * 10 ** _BPS_PLACES, 10 ** e) for q in (MEDIAN, P90))
    return Stat(len(values), *(_units(x, _BPS_PLACES) for x in (mean, median, p90)))


def _latency(values: Sequence[int]) -> Latency:
    if not values:
        return Latency(0, None, None)
    ordered = sorted(values)
    n = len(ordered)
    median, p90 = (ordered[-(-n * num // den) - 1] for num, den in (MEDIAN, P90))
    return Latency(n, median, p90)


def _group_seed(seed: int, key: Mapping[str, str]) -> int:
    digest = hashlib.sha256(json.dumps([seed, sorted(key.items())]).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _draws(population: list[int], rng: random.Random) -> Iterator[int]:
    """An endless stream of uniform draws, with replacement, of ``population`` (no element of which is 0).

    Up to 65,536 elements, without a Python step per draw: 16-bit words from ``rng.randbytes``, each looked up in a
    table holding ``population`` repeated floor(65536/n) times and 0 in the rest, the 0s (rejections) dropped:
    exactly uniform, and the same for a seed on every platform (the words are read little-endian). Larger
    populations: ``rng.choices``."""
    n = len(population)
    words = array("H")
    if n > _WORDS or words.itemsize != 2:
        return chain.from_iterable(rng.choices(population, k=_CHUNK) for _ in repeat(None))
    copies = _WORDS // n
    table = population * copies + [0] * (_WORDS - n * copies)

    def chunks() -> Iterator[array[int]]:
        while True:
            chunk = array("H", rng.randbytes(2 * _CHUNK))
            if sys.byteorder != "little":
                chunk.byteswap()
            yield chunk

    return chain.from_iterable(filter(None, map(table.__getitem__, chunk)) for chunk in chunks())


def _bootstrap(values: Sequence[Decimal], weights: Sequence[int], rng: random.Random,
               resamples: int) -> tuple[Decimal, Decimal] | None:
    """Percentile-method 95% interval of the weighted mean of values (bps), rounded to BPS.

    Each row is packed into one integer, ``(w*v << shift) + w`` (w > 0, shift above any resample's total weight),
    so a resample's weight and weighted sum are one ``sum`` of drawn integers: its low bits and the rest. The
    resamples are consecutive runs of n draws of one stream (``_draws``)."""
    ints, e = _scaled(values)
    kept = [(v, w) for v, w in zip(ints, weights) if w]  # a row of zero weight changes no weighted mean
    n = len(kept)
    if n < 2:
        return None
    shift = (n * max(w for _, w in kept)).bit_length() + 1
    mask = (1 << shift) - 1
    packed = [((w * v) << shift) + w for v, w in kept]
    up, down = 10 ** _BPS_PLACES, 10 ** e
    resampled = _draws(packed, rng)
    means = []
    for _ in range(resamples):
        total = sum(islice(resampled, n))
        # rounding is monotone: the order statistics of the rounded means are the rounded order statistics
        means.append(_div_round((total >> shift) * up, (total & mask) * down))
    means.sort()
    low, high = (means[-(-resamples * num // den) - 1] for num, den in (CI_LOW, CI_HIGH))
    return _units(low, _BPS_PLACES), _units(high, _BPS_PLACES)


# ---- one group -------------------------------------------------------------------------------------------------

def _group(key: dict[str, str], rows: Sequence[Mapping[str, Any]], seed: int, resamples: int) -> Group:
    notionals = [_dec(r.get("notional")) or Decimal(0) for r in rows]
    weights = _weights(notionals)  # scaled once: every notional-weighted figure of the group shares them
    costs = {c: _split([_dec(r.get(c)) for r in rows], weights) for c in COSTS}
    stats = {c: _stat(*pair) for c, pair in costs.items()}

    ratios = [d for d in (_dec(r.get("fill_ratio")) for r in rows) if d is not None]
    traded, ordered = [], []  # fill ratio, and quantity * average price, of the orders with a fill
    for r in rows:
        ratio, quantity, average = _dec(r.get("fill_ratio")), _dec(r.get("quantity")), _dec(r.get("average_price"))
        if ratio is not None and quantity is not None and average is not None:
            traded.append(ratio)
            ordered.append(quantity * average)
    rejected = sum(1 for r in rows if r.get("rejected"))

    return Group(
        key=key, count=len(rows), notional=sum(notionals, Decimal(0)),
        fill_ratio=_weighted_mean(ratios, [1] * len(ratios), _RATIO_PLACES),
        fill_ratio_weighted=_weighted_mean(*_split(traded, _weights(ordered)), _RATIO_PLACES),
        reject_rate=_units(_div_round(rejected * 10 ** _RATIO_PLACES, len(rows)), _RATIO_PLACES),
        maker_share=_weighted_mean(*_split([_dec(r.get("maker_share")) for r in rows], weights), _RATIO_PLACES),
        costs=stats, markout_curve={h: stats[c].mean for h, c in MARKOUTS.items()},
        latencies={c: _latency([int(r[c]) for r in rows if r.get(c) is not None]) for c in LATENCIES},
        arrival_cost_ci95=_bootstrap(*costs["arrival_cost_bps"], random.Random(_group_seed(seed, key)), resamples))
