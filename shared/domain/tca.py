"""Transaction cost analysis of one order: pure arithmetic over the prices and times recorded as they happened.

Pure: no I/O, no clock. Every price, quantity and fee is Decimal; every time is epoch milliseconds.

One sign convention, in the names (README "Execution analytics" has every formula):
- side ``s`` = +1 buy, -1 sell;
- every ``*_cost_bps`` (and each implementation-shortfall part) is **positive when it cost us**;
- every ``markout_*_bps`` is **positive when the market later moved in our favour**;
- a metric that cannot be computed (no quote, no tape, a fee in a currency without a rate, a horizon not yet
  reached) is ``None`` with a ``flags`` entry saying why, never 0.

Implementation shortfall (Perold, in the Wagner-Edwards form), X ordered, Q filled, Pd the decision price, P0 the
arrival mid, P_end the mid when the order ended, fills (q_i, p_i):
``delay = s*Q*(P0 - Pd)``, ``execution = s*sum(q_i*(p_i - P0))``, ``opportunity = s*(X - Q)*(P_end - Pd)``,
``fees`` (in the quote currency, rebates negative). The parts are exact Decimal cash amounts in the quote currency
and add up to ``total`` exactly; in basis points of ``X*Pd`` each part is rounded to ``BPS`` and ``total_bps`` is
defined as the sum of the rounded parts, so the identity holds in both units.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from shared.domain.orders import Side

BPS = Decimal("0.000001")  # every figure in basis points is rounded to this (half-even)
PRICE = Decimal("1E-12")  # benchmark prices (interval VWAP, TWAP of mid) are rounded to this
RATIO = Decimal("1E-9")  # shares and ratios
GAP = Decimal("1E-12")  # a schedule gap (a fraction of the order) as kept on the parent
MARKOUT_HORIZONS_S = (-10, 1, 10, 60, 300)  # seconds after each fill (-10: the mid ten seconds before it)
_EXACT = 80  # digits of the context every computation runs in: sums and products of the inputs stay exact
_TEN_K = Decimal(10_000)


def sign(side: Side) -> int:
    return 1 if side is Side.BUY else -1


@dataclass(frozen=True)
class Quote:
    bid: Decimal
    ask: Decimal

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


@dataclass(frozen=True)
class TcaFill:
    """One of our fills with what TCA needs of it. ``fee`` is in the quote currency (``fee_in_quote``), None when
    it cannot be converted; ``quote`` the venue's touch at the fill's time, when known; ``mids`` the mid at
    ``timestamp_ms + h`` seconds for each horizon h measured so far."""

    quantity: Decimal
    price: Decimal
    timestamp_ms: int
    fee: Decimal | None = Decimal(0)
    liquidity: str | None = None  # "maker" | "taker" | None (the venue did not say)
    quote: Quote | None = None
    mids: Mapping[int, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class TapeTrade:
    """A public trade of the venue. ``ours``: it is one of our fills (matched by the caller)."""

    timestamp_ms: int
    price: Decimal
    quantity: Decimal
    ours: bool = False


@dataclass(frozen=True)
class Times:
    """When each step happened (epoch ms; None: it did not happen, or is not known)."""

    decided: int | None = None  # the signal or request was received
    submitted: int | None = None  # the first venue order was sent
    acknowledged: int | None = None  # the venue acknowledged it
    first_fill: int | None = None
    cancel_requested: int | None = None
    cancel_confirmed: int | None = None


@dataclass(frozen=True)
class ScheduleTrack:
    """How far an algorithm's fills were from its plan: at each slice, |filled - planned| / X, where planned is
    the cumulative quantity the previous slice aimed to have done by now. Kept as running sums (a parent's record
    cannot hold every slice of a long POV): points, the largest gap, the sum of squared gaps."""

    points: int = 0
    gap_max: Decimal = Decimal(0)
    gap_sq: Decimal = Decimal(0)

    def step(self, planned: Decimal, filled: Decimal, quantity: Decimal) -> ScheduleTrack:
        with localcontext() as ctx:
            ctx.prec = _EXACT
            gap = _round(abs(filled - planned) / quantity, GAP)
            return ScheduleTrack(self.points + 1, max(self.gap_max, gap), self.gap_sq + gap * gap)

    @classmethod
    def of(cls, pairs: Sequence[tuple[Decimal, Decimal]], quantity: Decimal) -> ScheduleTrack:
        """From (planned, filled) pairs."""
        track = cls()
        for planned, filled in pairs:
            track = track.step(planned, filled, quantity)
        return track


@dataclass(frozen=True)
class RouterEstimate:
    """The SmartRouter's pre-trade view: the average price it expected from the best single venue, and from the
    consolidated optimum over every venue's book (both at the snapshot it routed on)."""

    best_single_price: Decimal | None
    consolidated_price: Decimal | None


@dataclass(frozen=True)
class TcaInput:
    side: Side
    quantity: Decimal  # X, what was ordered
    fills: tuple[TcaFill, ...] = ()
    decision_price: Decimal | None = None  # Pd: the mid when the signal or request was received
    arrival_mid: Decimal | None = None  # P0: the mid when the first venue order reached the venue
    end_mid: Decimal | None = None  # P_end: the mid when the order ended (None while it works)
    tape: tuple[TapeTrade, ...] | None = None  # the venue's public trades over the working window (None: unknown)
    window: tuple[int, int] | None = None  # [first venue order sent, last fill or end], for tape and mid benchmarks
    mids: tuple[tuple[int, Decimal], ...] = ()  # (time, mid) samples taken while the order worked, for TWAP-of-mid
    schedule: ScheduleTrack | None = None  # TWAP, VWAP, POV parents: filled vs planned at each slice
    times: Times = Times()
    router: RouterEstimate | None = None
    notes: tuple[str, ...] = ()  # the caller's flags on its samples (a late quote, a late markout): kept in `flags`


@dataclass(frozen=True)
class Shortfall:
    """Implementation shortfall, in quote-currency cash and in bps of X*Pd (positive: it cost us)."""

    delay: Decimal
    execution: Decimal
    opportunity: Decimal
    fees: Decimal
    total: Decimal
    delay_bps: Decimal
    execution_bps: Decimal
    opportunity_bps: Decimal
    fees_bps: Decimal
    total_bps: Decimal


@dataclass(frozen=True)
class FillTca:
    quantity: Decimal
    price: Decimal
    timestamp_ms: int
    liquidity: str | None
    effective_spread_bps: Decimal | None  # 2*s*(p - m)/m
    quoted_spread_bps: Decimal | None  # (a - b)/m
    spread_capture: Decimal | None  # s*(m - p)/((a - b)/2): 1 at our side's touch, 0 at the mid, -1 across
    outside_quote: bool | None  # the fill's price lies outside [bid, ask] (an anomaly)
    markouts_bps: dict[int, Decimal]  # h -> s*(m(t+h) - p)/p
    realized_spread_bps: dict[int, Decimal]  # h -> 2*s*(p - m(t+h))/m
    price_impact_bps: dict[int, Decimal]  # h -> 2*s*(m(t+h) - m)/m; effective = realized + impact


@dataclass(frozen=True)
class TcaRecord:
    quantity: Decimal
    filled_quantity: Decimal
    average_price: Decimal | None
    fill_ratio: Decimal
    notional: Decimal
    arrival_cost_bps: Decimal | None
    shortfall: Shortfall | None
    interval_vwap: Decimal | None
    interval_vwap_cost_bps: Decimal | None  # against the market's VWAP including our fills
    interval_vwap_ex_ours: Decimal | None
    interval_vwap_ex_ours_cost_bps: Decimal | None
    twap_mid: Decimal | None
    twap_mid_cost_bps: Decimal | None
    participation: Decimal | None  # Q over the market's volume in the window (ours included)
    fees: Decimal | None  # in the quote currency
    fees_bps: Decimal | None
    maker_share: Decimal | None
    taker_share: Decimal | None
    schedule_deviation_max: Decimal | None  # max |filled - planned| / X over the slices
    schedule_deviation_rms: Decimal | None
    markouts_bps: dict[int, Decimal | None]  # notional-weighted over the fills; None until every fill has it
    latencies_ms: dict[str, int | None]
    router_vs_best_venue_bps: Decimal | None  # s*(P_best - P)/P_best: positive when routing beat one venue
    router_vs_consolidated_bps: Decimal | None
    window: tuple[int, int] | None  # [first venue order sent, last fill (or the end)]: the benchmarks' interval
    fills: tuple[FillTca, ...]
    flags: tuple[str, ...]


def _round(value: Decimal, step: Decimal) -> Decimal:
    rounded = value.quantize(step, rounding=ROUND_HALF_EVEN)
    return rounded if rounded else Decimal(0)  # a plain 0, not 0E-9


def _bps(value: Decimal) -> Decimal:
    return _round(value * _TEN_K, BPS)


def fee_in_quote(fees: Mapping[str, Decimal], base: str, quote: str, price: Decimal,
                 rates: Mapping[str, Decimal] | None = None) -> Decimal | None:
    """Fees kept per currency, in the quote currency: the quote's as they are, the base's at the fill's price,
    another currency at ``rates[currency]`` (its price in the quote currency). None when one has no rate."""
    total = Decimal(0)
    for currency, amount in fees.items():
        if currency == quote:
            total += amount
        elif currency == base:
            total += amount * price
        elif rates is not None and currency in rates:
            total += amount * rates[currency]
        else:
            return None
    return total


def _weighted(pairs: Sequence[tuple[Decimal, Decimal]]) -> Decimal | None:
    """Weighted mean of (value, weight) pairs; None without weight."""
    weight = sum((w for _, w in pairs), Decimal(0))
    if weight == 0:
        return None
    return sum((v * w for v, w in pairs), Decimal(0)) / weight


def _cost_bps(s: int, price: Decimal, benchmark: Decimal) -> Decimal:
    return _bps(s * (price - benchmark) / benchmark)


def time_weighted_mid(samples: Sequence[tuple[int, Decimal]], start: int, end: int) -> Decimal | None:
    """The mean of the mid over [start, end], the mid held as a step from each sample to the next (the last
    sample before `start` opens the window). None without a sample at or before a moment of the window."""
    ordered = sorted(samples, key=lambda sample: sample[0])
    if end <= start:
        before = [mid for at, mid in ordered if at <= start]
        return before[-1] if before else None
    area = Decimal(0)
    current: Decimal | None = None
    at = start
    for t, mid in ordered:
        if t <= start:
            current = mid
            continue
        if t >= end:
            break
        if current is None:
            return None
        area += current * (t - at)
        current, at = mid, t
    if current is None:
        return None
    area += current * (end - at)
    return area / (end - start)


def markout_bps(side: Side, price: Decimal, later_mid: Decimal) -> Decimal:
    """One fill's markout: s*(m(t+h) - p)/p in bps, positive when the market moved in our favour."""
    with localcontext() as ctx:
        ctx.prec = _EXACT
        return _bps(sign(side) * (later_mid - price) / price)


def _fill_tca(s: int, fill: TcaFill, flags: list[str]) -> FillTca:
    effective = quoted = capture = None
    outside = None
    realized: dict[int, Decimal] = {}
    impact: dict[int, Decimal] = {}
    markouts = {h: markout_bps(Side.BUY if s > 0 else Side.SELL, fill.price, m) for h, m in sorted(fill.mids.items())}
    q = fill.quote
    if q is not None and q.bid > 0 and q.ask >= q.bid:
        m = q.mid
        effective = _bps(2 * s * (fill.price - m) / m)
        quoted = _bps((q.ask - q.bid) / m)
        capture = _round(s * (m - fill.price) / ((q.ask - q.bid) / 2), RATIO) if q.ask > q.bid else None
        outside = not (q.bid <= fill.price <= q.ask)
        if outside:
            flags.append(f"fill_outside_quote@{fill.timestamp_ms}")
        for h, later in sorted(fill.mids.items()):
            if h > 0:
                # each as the unrounded difference, then rounded: effective = realized + impact up to 2 * BPS
                realized[h] = _bps(2 * s * (fill.price - later) / m)
                impact[h] = _bps(2 * s * (later - m) / m)
    return FillTca(fill.quantity, fill.price, fill.timestamp_ms, fill.liquidity, effective, quoted, capture, outside,
                   markouts, realized, impact)


def analyze(order: TcaInput, horizons: Sequence[int] = MARKOUT_HORIZONS_S) -> TcaRecord:
    """The TCA record of one order as its facts stand (also while it works: what is not known yet is None and
    flagged)."""
    with localcontext() as ctx:
        ctx.prec = _EXACT
        return _analyze(order, horizons)


def _analyze(order: TcaInput, horizons: Sequence[int]) -> TcaRecord:
    s = sign(order.side)
    flags: list[str] = list(order.notes)
    fills = order.fills
    filled = sum((f.quantity for f in fills), Decimal(0))
    notional = sum((f.quantity * f.price for f in fills), Decimal(0))
    average = notional / filled if filled else None
    fill_ratio = _round(filled / order.quantity, RATIO) if order.quantity else Decimal(0)
    if not fills:
        flags.append("no_fills")

    fee_parts = [f.fee for f in fills]
    fees: Decimal | None = None
    if any(f is None for f in fee_parts):
        flags.append("fee_without_rate")
    else:
        fees = sum((f for f in fee_parts if f is not None), Decimal(0))

    p0, pd = order.arrival_mid, order.decision_price
    arrival = None
    if average is not None:
        if p0 is None:
            flags.append("no_arrival_mid")
        else:
            arrival = _cost_bps(s, average, p0)

    shortfall = None
    if pd is None:
        flags.append("no_decision_price")
    elif order.end_mid is None and filled < order.quantity:
        flags.append("no_end_mid")  # the opportunity cost of the unfilled part needs the mid at the end
    elif fees is not None and (p0 is not None or not filled):
        p0_ = p0 if p0 is not None else pd  # nothing filled: the delay part is zero whatever P0 was
        p_end = order.end_mid if order.end_mid is not None else pd  # all filled: the opportunity part is zero
        delay = s * filled * (p0_ - pd)
        execution = s * sum((f.quantity * (f.price - p0_) for f in fills), Decimal(0))
        opportunity = s * (order.quantity - filled) * (p_end - pd)
        delay, execution, opportunity = (x if x else Decimal(0) for x in (delay, execution, opportunity))
        paper = order.quantity * pd
        parts = [_bps(x / paper) for x in (delay, execution, opportunity, fees)]
        shortfall = Shortfall(delay, execution, opportunity, fees, delay + execution + opportunity + fees,
                              *parts, sum(parts, Decimal(0)))

    vwap = vwap_ex = None
    participation = None
    if order.tape is None or order.window is None:
        flags.append("no_tape")
    else:
        start, end = order.window
        inside = [t for t in order.tape if start <= t.timestamp_ms <= end]
        volume = sum((t.quantity for t in inside), Decimal(0))
        vwap = _weighted([(t.price, t.quantity) for t in inside])
        vwap_ex = _weighted([(t.price, t.quantity) for t in inside if not t.ours])
        if vwap is None:
            flags.append("no_market_trades_in_window")
        else:
            participation = _round(filled / volume, RATIO)
        if vwap_ex is None and vwap is not None:
            flags.append("only_our_trades_in_window")

    twap = None
    if order.window is None:
        flags.append("no_window")
    else:
        twap = time_weighted_mid(order.mids, *order.window)
        if twap is None:
            flags.append("no_mid_samples")

    def benchmark(price: Decimal | None) -> tuple[Decimal | None, Decimal | None]:
        if price is None:
            return None, None
        return _round(price, PRICE), (_cost_bps(s, average, price) if average is not None else None)

    (vwap, vwap_cost), (vwap_ex, vwap_ex_cost), (twap, twap_cost) = benchmark(vwap), benchmark(vwap_ex), \
        benchmark(twap)

    maker = taker = None
    if filled:
        if any(f.liquidity not in ("maker", "taker") for f in fills):
            flags.append("liquidity_unknown")
        else:
            made = sum((f.quantity for f in fills if f.liquidity == "maker"), Decimal(0))
            maker = _round(made / filled, RATIO)
            taker = _round(1 - maker, RATIO)

    deviation_max = deviation_rms = None
    track = order.schedule
    if track is not None and track.points:
        deviation_max = _round(track.gap_max, RATIO)
        deviation_rms = _round((track.gap_sq / track.points).sqrt(), RATIO)

    per_fill = tuple(_fill_tca(s, f, flags) for f in fills)
    markouts: dict[int, Decimal | None] = {}
    for h in horizons:
        if not fills or any(h not in f.mids for f in fills):
            markouts[h] = None
            if fills:
                flags.append(f"markout_{h}s_pending")
            continue
        # notional-weighted mean of s*(m - p)/p, weights q*p: s*sum(q*(m - p)) / notional, exactly
        markouts[h] = _bps(s * sum((f.quantity * (f.mids[h] - f.price) for f in fills), Decimal(0)) / notional)

    t = order.times

    def gap(a: int | None, b: int | None) -> int | None:
        return b - a if a is not None and b is not None else None

    latencies = {"decision_to_submit": gap(t.decided, t.submitted), "submit_to_ack": gap(t.submitted, t.acknowledged),
                 "ack_to_first_fill": gap(t.acknowledged, t.first_fill),
                 "cancel_to_confirm": gap(t.cancel_requested, t.cancel_confirmed)}

    router_best = router_consolidated = None
    if order.router is not None and average is not None:
        best, consolidated = order.router.best_single_price, order.router.consolidated_price
        router_best = _bps(s * (best - average) / best) if best else None
        router_consolidated = _bps(s * (consolidated - average) / consolidated) if consolidated else None

    return TcaRecord(
        quantity=order.quantity, filled_quantity=filled, average_price=_round(average, PRICE) if average else None,
        fill_ratio=fill_ratio, notional=notional, arrival_cost_bps=arrival, shortfall=shortfall,
        interval_vwap=vwap, interval_vwap_cost_bps=vwap_cost, interval_vwap_ex_ours=vwap_ex,
        interval_vwap_ex_ours_cost_bps=vwap_ex_cost, twap_mid=twap, twap_mid_cost_bps=twap_cost,
        participation=participation, fees=fees, fees_bps=_bps(fees / notional) if fees is not None and notional else None,
        maker_share=maker, taker_share=taker, schedule_deviation_max=deviation_max,
        schedule_deviation_rms=deviation_rms, markouts_bps=markouts, latencies_ms=latencies,
        router_vs_best_venue_bps=router_best, router_vs_consolidated_bps=router_consolidated, window=order.window, fills=per_fill,
        flags=tuple(flags))
