"""The data of execctl's TCA charts, built from the service's JSON documents: pure (no I/O, no clock, no
matplotlib), Decimal in, plain data out (dataclasses of lists), so that a test can check a chart's series against
the order's fills without looking at pixels. execctl/charts_png.py draws them.

Only what the service measured is drawn (README "Execution analytics"). The market mid over an order's life is not
recorded as a history: what exists is the decision mid, each venue order's arrival mid, each fill's touch and the
mids sampled at the markout horizons (``market.mids`` of GET /orders/{id}/tca); the price panel draws those
samples as points joined by steps, per venue, and nothing in between. A panel whose data does not exist (no
schedule for a direct order, no markout sampled yet, no shortfall without a decision price) is left out with the
reason (``missing``), never filled with a stand-in.

Signs as the service's: costs and shortfall parts positive when they cost us; markouts positive when the market
then moved in our favour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from execctl.output import dec

HORIZONS_S = (-10, 1, 10, 60, 300)  # the markout horizons (shared/domain/tca.py MARKOUT_HORIZONS_S)
SHORTFALL_PARTS = ("delay", "execution", "opportunity", "fees")
Z95 = Decimal("1.96")  # the markout band: weighted mean over the fills +- 1.96 standard errors (normal approx.)
REPORT_COSTS = ("arrival_cost_bps", "shortfall_bps", "interval_vwap_cost_bps", "fees_bps")


# ---- one order ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PriceSeries:
    """Execution price against the market: every fill (time, price, quantity, venue) and the mids the service
    sampled (time, mid, what the sample was, its venue), with the reference prices as levels."""

    t0: int  # epoch ms of the time axis' zero: the decision (the order's creation)
    quote_currency: str
    fill_times: list[int] = field(default_factory=list)
    fill_prices: list[Decimal] = field(default_factory=list)
    fill_quantities: list[Decimal] = field(default_factory=list)
    fill_venues: list[str] = field(default_factory=list)
    mid_times: list[int] = field(default_factory=list)
    mid_values: list[Decimal] = field(default_factory=list)
    mid_sources: list[str] = field(default_factory=list)  # decision, arrival, fill_touch, markout_<h>s
    mid_venues: list[str | None] = field(default_factory=list)
    decision_mid: Decimal | None = None
    arrival_mid: Decimal | None = None
    average_price: Decimal | None = None
    interval_vwap: Decimal | None = None
    window: tuple[int, int] | None = None  # the interval VWAP's [start, end], epoch ms

    @property
    def venues(self) -> list[str]:
        return sorted(set(self.fill_venues) | {v for v in self.mid_venues if v})


@dataclass(frozen=True)
class ScheduleSeries:
    """An algorithm parent: cumulative filled (from its fills) against cumulative sent to venues (each child's
    quantity from when it was created, less what it left unfilled from when it ended), and the ordered quantity."""

    t0: int
    quantity: Decimal
    filled_times: list[int]
    filled_cumulative: list[Decimal]
    sent_times: list[int]
    sent_cumulative: list[Decimal]
    children: int
    deviation_max: Decimal | None  # the service's schedule deviation (fraction of the order)
    deviation_rms: Decimal | None
    planned_times: list[int] = field(default_factory=list)  # TWAP only: the schedule's cumulative target
    planned_cumulative: list[Decimal] = field(default_factory=list)  # at each slice time (shared.domain's TWAP)


@dataclass(frozen=True)
class MarkoutSeries:
    """The order's markout by horizon (the service's, notional-weighted) with a 95% band across its fills: the
    fills' notional-weighted mean +- Z95 standard errors (effective n = (sum w)^2 / sum w^2), only where at least
    two fills have the horizon. Horizons not sampled yet are listed in ``pending``."""

    horizons: list[int]
    order_bps: list[Decimal]
    band_low: list[Decimal | None]
    band_high: list[Decimal | None]
    fills_with: list[int]  # fills having each horizon
    fill_horizons: list[int]  # every fill's markout, for the scatter
    fill_bps: list[Decimal]
    pending: list[int]


@dataclass(frozen=True)
class Waterfall:
    """Implementation shortfall parts in bps of X·Pd, each bar from the running sum, and the total."""

    labels: list[str]
    values: list[Decimal]
    bottoms: list[Decimal]
    total: Decimal
    total_cash: Decimal | None  # in the quote currency (an order's; None for an aggregate)


@dataclass(frozen=True)
class OrderChart:
    title: str
    price: PriceSeries
    schedule: ScheduleSeries | None
    markouts: MarkoutSeries | None
    waterfall: Waterfall | None
    missing: dict[str, str]  # panel -> why it is not drawn


def _ms(value: Any) -> int | None:
    return None if value is None else int(value)


def price_series(tca_doc: Mapping[str, Any], t0: int) -> PriceSeries:
    """From GET /orders/{id}/tca: its ``market`` (fills with venues, mid samples) and ``facts``/``tca`` levels."""
    facts, tca, market = tca_doc.get("facts") or {}, tca_doc.get("tca") or {}, tca_doc.get("market") or {}
    symbol = str(tca_doc.get("symbol") or "")
    fills = market.get("fills") or []
    mids = market.get("mids") or []
    window = tca.get("window")
    return PriceSeries(
        t0=t0, quote_currency=symbol.split("/")[1] if "/" in symbol else "quote currency",
        fill_times=[int(f["timestamp"]) for f in fills], fill_prices=[dec(f["price"]) for f in fills],
        fill_quantities=[dec(f["quantity"]) for f in fills], fill_venues=[str(f["venue"]) for f in fills],
        mid_times=[int(m["at"]) for m in mids], mid_values=[dec(m["mid"]) for m in mids],
        mid_sources=[str(m["source"]) for m in mids], mid_venues=[m.get("venue") for m in mids],
        decision_mid=dec(facts.get("decision_mid")), arrival_mid=dec(facts.get("arrival_mid")),
        average_price=dec(tca.get("average_price")), interval_vwap=dec(tca.get("interval_vwap")),
        window=(int(window[0]), int(window[1])) if window else None)


def twap_plan(order_doc: Mapping[str, Any]) -> tuple[list[int], list[Decimal]]:
    """A TWAP parent's schedule, as the service's own planner defines it (shared/domain/algorithms/twap.py): at
    each slice time, the cumulative quantity due (quantity x (k + 1) / slices; all of it from the catch-up on).
    Empty for other algorithms: VWAP's fractions follow the market's volume profile at each slice, which is not
    recorded, and POV's the traded volume."""
    if str(order_doc.get("algorithm") or "").lower() != "twap":
        return [], []
    from execctl.schedule import parent_view
    from shared.domain.algorithms import planner_for

    quantity = dec(order_doc["quantity"])
    planner = planner_for("twap", order_doc.get("algorithm_params") or {})
    view = parent_view({**order_doc, "slices_done": 0})
    schedule = planner.schedule(view)
    if schedule.end <= schedule.start:
        return [], []
    times = [schedule.at(k) for k in range(schedule.n)] + [schedule.catch_up_at]
    due = [min(quantity, quantity * planner.fraction(k, schedule.n, None)) for k in range(schedule.n)] + [quantity]
    return times, due


def schedule_series(tca_doc: Mapping[str, Any], children: Sequence[Mapping[str, Any]], t0: int,
                    order_doc: Mapping[str, Any] | None = None) -> ScheduleSeries:
    """From the parent's TCA (its fills, every child's), its children (GET /orders?parent_id=) and, for its
    planned schedule, the parent itself (GET /orders/{id})."""
    tca = tca_doc.get("tca") or {}
    fills = sorted((tca_doc.get("market") or {}).get("fills") or tca.get("fills") or [],
                   key=lambda f: int(f["timestamp"]))
    filled_times, filled_cumulative, running = [t0], [Decimal(0)], Decimal(0)
    for f in fills:
        running += dec(f["quantity"])
        filled_times.append(int(f["timestamp"]))
        filled_cumulative.append(running)
    steps: list[tuple[int, Decimal]] = []
    for child in children:
        sent_at = int(child["created_at"])  # not submitted_at: our clock stamps it after the venue's answer,
        # which can be later than the venue's own time of a fill the placement made
        quantity, filled = dec(child["quantity"]), dec(child.get("filled_quantity")) or Decimal(0)
        steps.append((sent_at, quantity))
        ended = _ms(child.get("terminal_at"))
        if ended is not None and quantity > filled:
            steps.append((max(ended, sent_at), filled - quantity))
    steps.sort(key=lambda s: s[0])
    sent_times, sent_cumulative, running = [t0], [Decimal(0)], Decimal(0)
    for at, change in steps:
        running += change
        sent_times.append(at)
        sent_cumulative.append(running)
    planned_times, planned = twap_plan(order_doc) if order_doc else ([], [])
    return ScheduleSeries(t0, dec(tca.get("quantity")) or Decimal(0), filled_times, filled_cumulative, sent_times,
                          sent_cumulative, len(children), dec(tca.get("schedule_deviation_max")),
                          dec(tca.get("schedule_deviation_rms")), planned_times, planned)


def markout_series(tca_doc: Mapping[str, Any]) -> MarkoutSeries:
    tca = tca_doc.get("tca") or {}
    order = tca.get("markouts_bps") or {}
    fills = tca.get("fills") or []
    horizons, values, lows, highs, counts, pending = [], [], [], [], [], []
    fill_h, fill_v = [], []
    for h in HORIZONS_S:
        value = dec(order.get(str(h)))
        per_fill = [(dec(f["markouts_bps"][str(h)]), dec(f["quantity"]) * dec(f["price"])) for f in fills
                    if (f.get("markouts_bps") or {}).get(str(h)) is not None]
        fill_h += [h] * len(per_fill)
        fill_v += [v for v, _ in per_fill]
        if value is None:
            pending.append(h)
            continue
        horizons.append(h)
        values.append(value)
        counts.append(len(per_fill))
        low, high = _band(per_fill)
        lows.append(low)
        highs.append(high)
    return MarkoutSeries(horizons, values, lows, highs, counts, fill_h, fill_v, pending)


def _band(pairs: Sequence[tuple[Decimal, Decimal]]) -> tuple[Decimal | None, Decimal | None]:
    """Weighted mean +- Z95 standard errors of (value, weight) pairs; None for fewer than two or no weight."""
    weight = sum((w for _, w in pairs), Decimal(0))
    if len(pairs) < 2 or weight <= 0:
        return None, None
    mean = sum((v * w for v, w in pairs), Decimal(0)) / weight
    variance = sum((w * (v - mean) ** 2 for v, w in pairs), Decimal(0)) / weight
    n_eff = weight * weight / sum((w * w for _, w in pairs), Decimal(0))
    half = Z95 * (variance / n_eff).sqrt()
    return mean - half, mean + half


def waterfall(parts: Sequence[Decimal], total: Decimal, total_cash: Decimal | None = None) -> Waterfall:
    bottoms, running = [], Decimal(0)
    for value in parts:
        bottoms.append(running if value >= 0 else running + value)
        running += value
    return Waterfall(list(SHORTFALL_PARTS), list(parts), bottoms, total, total_cash)


def order_chart(tca_doc: Mapping[str, Any], order_doc: Mapping[str, Any],
                children: Sequence[Mapping[str, Any]] = ()) -> OrderChart:
    """Every panel of one order's chart, from GET /orders/{id}/tca, GET /orders/{id} and (a parent) its children."""
    tca = tca_doc.get("tca") or {}
    t0 = int(order_doc["created_at"])
    missing: dict[str, str] = {}
    price = price_series(tca_doc, t0)
    if not price.fill_times:
        missing["price"] = "no fills yet"
    if "market" not in tca_doc:
        missing["price"] = "the service sent no market samples (an older service: no venue per fill)"

    schedule = None
    if not order_doc.get("algorithm"):
        missing["schedule"] = "a direct order: no algorithm schedule"
    elif not children:
        missing["schedule"] = "no child orders sent yet"
    else:
        schedule = schedule_series(tca_doc, children, t0, order_doc)

    markouts = markout_series(tca_doc)
    if not markouts.horizons:
        missing["markouts"] = "no markout sampled yet" if tca.get("fills") else "no fills"
        markouts = None

    shortfall = tca.get("shortfall")
    water = None
    if shortfall:
        water = waterfall([dec(shortfall[f"{p}_bps"]) for p in SHORTFALL_PARTS], dec(shortfall["total_bps"]),
                          dec(shortfall["total"]))
    else:
        why = [f for f in tca.get("flags") or () if f in ("no_decision_price", "no_end_mid", "no_arrival_mid",
                                                            "fee_without_rate")]
        missing["shortfall"] = "not computed" + (f" ({', '.join(why)})" if why else "")

    side, symbol = tca_doc.get("side", ""), tca_doc.get("symbol", "")
    algo = order_doc.get("algorithm") or "direct"
    title = (f"TCA of {tca_doc.get('order_id')}: {side} {tca.get('quantity')} {symbol} on {tca_doc.get('exchange')} "
             f"({algo}, {tca_doc.get('status')}), filled {tca.get('filled_quantity')}")
    return OrderChart(title, price, schedule, markouts, water, missing)


# ---- the aggregate --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CostDistribution:
    """Per group (label, orders) and per cost: n, the notional-weighted mean, median and p90 (bps), and the
    bootstrap 95% interval of the mean arrival cost."""

    groups: list[str]
    counts: list[int]
    costs: list[str]
    n: dict[str, list[int]]
    mean: dict[str, list[Decimal | None]]
    median: dict[str, list[Decimal | None]]
    p90: dict[str, list[Decimal | None]]
    arrival_ci_low: list[Decimal | None]
    arrival_ci_high: list[Decimal | None]


@dataclass(frozen=True)
class MarkoutCurves:
    groups: list[str]
    horizons: list[int]
    bps: list[list[Decimal | None]]  # per group, per horizon: the notional-weighted mean


@dataclass(frozen=True)
class ReportChart:
    title: str
    costs: CostDistribution | None
    markouts: MarkoutCurves | None
    waterfalls: dict[str, Waterfall]  # group label -> its mean shortfall's parts
    missing: dict[str, str]


def group_label(key: Mapping[str, Any]) -> str:
    return " · ".join(str(v) or "(none)" for v in key.values()) or "all orders"


def report_chart(doc: Mapping[str, Any]) -> ReportChart:
    """From GET /analytics/tca: the cost distribution per group, the markout curves and the shortfall waterfalls."""
    groups = doc.get("groups") or []
    labels = [group_label(g.get("key") or {}) for g in groups]
    missing: dict[str, str] = {}
    title = (f"TCA of {doc.get('orders')} ended orders by {', '.join(doc.get('group_by') or []) or 'nothing'}")
    if not groups:
        missing.update(costs="no ended order in the window", markouts="no ended order in the window",
                       shortfall="no ended order in the window")
        return ReportChart(title, None, None, {}, missing)

    def stat(g: Mapping[str, Any], cost: str, what: str) -> Any:
        return ((g.get("costs") or {}).get(cost) or {}).get(what)

    ci = [g.get("arrival_cost_ci95") for g in groups]
    costs = CostDistribution(
        labels, [int(g["count"]) for g in groups], list(REPORT_COSTS),
        {c: [int(stat(g, c, "n") or 0) for g in groups] for c in REPORT_COSTS},
        {c: [dec(stat(g, c, "mean")) for g in groups] for c in REPORT_COSTS},
        {c: [dec(stat(g, c, "median")) for g in groups] for c in REPORT_COSTS},
        {c: [dec(stat(g, c, "p90")) for g in groups] for c in REPORT_COSTS},
        [dec(c[0]) if c else None for c in ci], [dec(c[1]) if c else None for c in ci])

    curves = [[dec((g.get("markout_curve") or {}).get(str(h))) for h in HORIZONS_S] for g in groups]
    markouts = MarkoutCurves(labels, list(HORIZONS_S), curves)
    if all(v is None for row in curves for v in row):
        missing["markouts"] = "no markout in any group yet"
        markouts = None

    waterfalls: dict[str, Waterfall] = {}
    for label, g in zip(labels, groups, strict=True):
        total = dec(stat(g, "shortfall_bps", "mean"))
        parts = [dec(stat(g, f"shortfall_{p}_bps", "mean")) for p in SHORTFALL_PARTS]
        same_rows = all(stat(g, f"shortfall_{p}_bps", "n") == stat(g, "shortfall_bps", "n") for p in SHORTFALL_PARTS)
        if total is not None and all(p is not None for p in parts) and same_rows:
            waterfalls[label] = waterfall(parts, total)
    if not waterfalls:
        missing["shortfall"] = "no group has the shortfall's parts for every order that has a shortfall"
    return ReportChart(title, costs, markouts, waterfalls, missing)
