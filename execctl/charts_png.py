"""execctl's TCA charts drawn to PNG with matplotlib, headless: the Agg backend is chosen before pyplot could be
imported (it never is: each chart is its own ``Figure``, so nothing global is kept between charts). A figure's
size and dpi are fixed, so its PNG's pixel size is known (``ORDER_PX``, ``REPORT_PX``) whatever it holds; a panel
without data says why in its place. The data comes from execctl/charts.py (pure), converted to float only here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before anything could import pyplot: no display, no GUI toolkit

from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from execctl.charts import (HORIZONS_S, MarkoutCurves, MarkoutSeries, OrderChart, PriceSeries,  # noqa: E402
                            ReportChart, ScheduleSeries, Waterfall, CostDistribution)

DPI = 100
ORDER_SIZE_IN = (14.0, 18.0)
REPORT_SIZE_IN = (14.0, 15.0)
ORDER_PX = (int(ORDER_SIZE_IN[0] * DPI), int(ORDER_SIZE_IN[1] * DPI))  # (width, height) of an order's PNG
REPORT_PX = (int(REPORT_SIZE_IN[0] * DPI), int(REPORT_SIZE_IN[1] * DPI))
_PALETTE = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive",
            "tab:cyan", "tab:gray")
_COST, _GAIN = "#c0392b", "#27ae60"
_MID_MARKERS = {"decision": "D", "arrival": "^", "fill_touch": ".", "markout": "x"}


def _f(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _colours(venues: list[str]) -> dict[str, str]:
    return {v: _PALETTE[i % len(_PALETTE)] for i, v in enumerate(sorted(venues))}


def _seconds(t: int, t0: int) -> float:
    return (t - t0) / 1000


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _no_data(ax: Axes, title: str, why: str) -> None:
    ax.set_title(title)
    ax.text(0.5, 0.5, f"no data: {why}", ha="center", va="center", transform=ax.transAxes, fontsize=12,
            color="dimgray")
    ax.set_xticks([])
    ax.set_yticks([])


def _panel(ax: Axes, data: Any, draw: Callable[[Axes, Any], None], title: str, why: str) -> None:
    """`draw` the panel's data, or say there is none and why (a chart never draws what was not measured)."""
    if data is None:
        _no_data(ax, title, why)
    else:
        draw(ax, data)


# ---- one order ------------------------------------------------------------------------------------------------
def _price(ax: Axes, p: PriceSeries) -> None:
    colours = _colours(p.venues)
    ax.set_title("Execution price vs the market mid (sampled mids only: decision, arrival, fill touch, markouts)")
    for venue in p.venues:  # each venue's mid samples as steps (the mid held until the next sample)
        points = [(_seconds(t, p.t0), float(m)) for t, m, v in zip(p.mid_times, p.mid_values, p.mid_venues)
                  if v == venue]
        if points:
            ax.step(*zip(*points), where="post", color=colours[venue], alpha=0.45, linewidth=1,
                    label=f"mid samples, {venue}")
    for source, marker in _MID_MARKERS.items():
        points = [(_seconds(t, p.t0), float(m)) for t, m, s in zip(p.mid_times, p.mid_values, p.mid_sources)
                  if s == source or (source == "markout" and s.startswith("markout_"))]
        if points:
            ax.scatter(*zip(*points), marker=marker, color="black", s=30 if marker != "." else 12, zorder=3,
                       label=f"mid: {source.replace('_', ' ')}")
    if p.fill_quantities:
        biggest = max(p.fill_quantities)
        for venue in sorted(set(p.fill_venues)):
            picked = [i for i, v in enumerate(p.fill_venues) if v == venue]
            ax.scatter([_seconds(p.fill_times[i], p.t0) for i in picked], [float(p.fill_prices[i]) for i in picked],
                       s=[40 + 460 * float(p.fill_quantities[i] / biggest) for i in picked], color=colours[venue],
                       edgecolors="black", linewidths=0.5, alpha=0.85, zorder=4,
                       label=f"fills on {venue} (size: quantity)")
    if p.decision_mid is not None:
        ax.axhline(float(p.decision_mid), color="dimgray", linestyle=":", label=f"decision mid {p.decision_mid}")
    if p.arrival_mid is not None:
        ax.axhline(float(p.arrival_mid), color="black", linestyle="--", linewidth=1,
                   label=f"arrival mid {p.arrival_mid}")
    if p.interval_vwap is not None and p.window is not None:
        ax.hlines(float(p.interval_vwap), _seconds(p.window[0], p.t0), _seconds(p.window[1], p.t0),
                  color="tab:purple", linewidth=2.5, label=f"interval VWAP {p.interval_vwap}")
    ax.set_xlabel(f"seconds since the decision ({_utc(p.t0)})")
    ax.set_ylabel(f"price ({p.quote_currency})")
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8, ncols=2, markerscale=0.6)


def _schedule(ax: Axes, s: ScheduleSeries) -> None:
    dev = "" if s.deviation_max is None else \
        f" (schedule deviation: max {float(s.deviation_max):.1%}, rms {float(s.deviation_rms or 0):.1%} of the order)"
    planned = " vs the TWAP schedule" if s.planned_times else ""
    ax.set_title(f"Cumulative filled{planned} and sent to venues, {s.children} child orders{dev}")
    if s.planned_times:
        ax.step([_seconds(t, s.t0) for t in s.planned_times], [float(q) for q in s.planned_cumulative],
                where="post", color="tab:orange", linestyle="--", label="TWAP schedule: due by each slice")
    if s.sent_times:
        ax.step([_seconds(t, s.t0) for t in s.sent_times], [float(q) for q in s.sent_cumulative], where="post",
                color="tab:gray", label="sent (filled + working)")
    if s.filled_times:
        ax.step([_seconds(t, s.t0) for t in s.filled_times], [float(q) for q in s.filled_cumulative],
                where="post", color="tab:blue", linewidth=2, label="filled")
    ax.axhline(float(s.quantity), color="black", linestyle="--", linewidth=1, label=f"ordered {s.quantity}")
    ax.set_xlabel("seconds since the decision")
    ax.set_ylabel("quantity (base currency)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)


def _horizon_axis(ax: Axes) -> None:
    ax.set_xticks(range(len(HORIZONS_S)), [f"{h:+d} s" for h in HORIZONS_S])
    ax.set_xlim(-0.5, len(HORIZONS_S) - 0.5)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("horizon after the fill (-10 s: the last public trade before it)")
    ax.grid(alpha=0.3)


def _markouts(ax: Axes, m: MarkoutSeries) -> None:
    at = {h: i for i, h in enumerate(HORIZONS_S)}
    pending = f"; pending: {', '.join(f'{h:+d} s' for h in m.pending)}" if m.pending else ""
    ax.set_title(f"Markout curve, notional-weighted, with a 95% band across fills{pending}")
    ax.scatter([at[h] for h in m.fill_horizons], [float(v) for v in m.fill_bps], color="tab:gray", s=12,
               alpha=0.5, label="each fill")
    ax.plot([at[h] for h in m.horizons], [float(v) for v in m.order_bps], marker="o", color="tab:blue",
            label="the order")
    banded = [(at[h], float(lo), float(hi)) for h, lo, hi in zip(m.horizons, m.band_low, m.band_high)
              if lo is not None and hi is not None]
    if banded:
        x, lo, hi = zip(*banded)
        ax.fill_between(x, lo, hi, color="tab:blue", alpha=0.2, label="95% band (normal approx., >= 2 fills)")
    _horizon_axis(ax)
    ax.set_ylabel("markout (bps, + = the market moved our way)")
    ax.legend(loc="best", fontsize=8)


def _waterfall(ax: Axes, w: Waterfall, title: str) -> None:
    x = list(range(len(w.labels) + 1))
    heights = [abs(float(v)) for v in w.values] + [abs(float(w.total))]
    bottoms = [float(b) for b in w.bottoms] + [min(0.0, float(w.total))]
    colours = [_COST if v >= 0 else _GAIN for v in w.values] + ["tab:blue"]
    ax.bar(x, heights, bottom=bottoms, color=colours, edgecolor="black", linewidth=0.5)
    for i, value in enumerate([*w.values, w.total]):
        ax.annotate(f"{float(value):+.2f} bps", (i, bottoms[i] + heights[i]), ha="center", va="bottom", fontsize=9)
    ax.set_xticks(x, [*w.labels, "total"])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_title(title)
    ax.set_ylabel("bps of ordered x decision price (+ = cost)")
    ax.grid(alpha=0.3, axis="y")


def render_order(chart: OrderChart, path: str | Path) -> Path:
    """The order's chart as a PNG of ORDER_PX pixels: price, schedule (algorithm parents), markouts, shortfall."""
    fig = Figure(figsize=ORDER_SIZE_IN, dpi=DPI, layout="constrained")
    price_ax, schedule_ax, markout_ax, waterfall_ax = fig.subplots(4, 1, height_ratios=(3, 2, 2, 2))
    fig.suptitle(chart.title, fontsize=13)
    _panel(price_ax, None if "price" in chart.missing else chart.price, _price,
           "Execution price vs the market mid", chart.missing.get("price", ""))
    _panel(schedule_ax, chart.schedule, _schedule, "Cumulative filled vs schedule", chart.missing.get("schedule", ""))
    _panel(markout_ax, chart.markouts, _markouts, "Markout curve", chart.missing.get("markouts", ""))
    cash = "" if chart.waterfall is None or chart.waterfall.total_cash is None else \
        f": total {chart.waterfall.total_cash} {chart.price.quote_currency}"
    _panel(waterfall_ax, chart.waterfall,
           lambda ax, w: _waterfall(ax, w, f"Implementation shortfall (delay, execution, opportunity, fees){cash}"),
           "Implementation shortfall", chart.missing.get("shortfall", ""))
    return _save(fig, path)


# ---- the aggregate --------------------------------------------------------------------------------------------
_COST_TITLES = {"arrival_cost_bps": "arrival cost", "shortfall_bps": "shortfall", "interval_vwap_cost_bps":
                "cost vs interval VWAP", "fees_bps": "fees"}


def _costs(ax: Axes, c: CostDistribution) -> None:
    ax.set_title("Cost distribution by group: notional-weighted mean (bar), median (dot), p90 (tick); "
                 "arrival: bootstrap 95% CI")
    width = 0.8 / len(c.costs)
    colours = _colours(c.costs)
    for j, cost in enumerate(c.costs):
        xs = [i - 0.4 + width * (j + 0.5) for i in range(len(c.groups))]
        means = [(x, float(v)) for x, v in zip(xs, c.mean[cost]) if v is not None]
        if means:
            ax.bar(*zip(*means), width=width * 0.9, color=colours[cost], alpha=0.7, label=_COST_TITLES[cost])
        for x, median, p90 in zip(xs, c.median[cost], c.p90[cost]):
            if median is not None:
                ax.plot([x], [float(median)], "o", color="black", markersize=4)
            if p90 is not None:
                ax.plot([x], [float(p90)], "_", color="black", markersize=12, markeredgewidth=2)
        if cost == "arrival_cost_bps":
            for x, mean, lo, hi in zip(xs, c.mean[cost], c.arrival_ci_low, c.arrival_ci_high):
                if mean is not None and lo is not None and hi is not None:
                    ax.errorbar([x], [float(mean)], yerr=[[float(mean - lo)], [float(hi - mean)]], color="black",
                                capsize=4, linewidth=1)
    ax.set_xticks(range(len(c.groups)), [f"{g}\n(n = {n})" for g, n in zip(c.groups, c.counts)])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylabel("bps (+ = it cost us)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="best", fontsize=8)


def _curves(ax: Axes, m: MarkoutCurves) -> None:
    ax.set_title("Markout curve by group (notional-weighted mean)")
    colours = _colours(m.groups)
    for group, row in zip(m.groups, m.bps):
        points = [(i, float(v)) for i, v in enumerate(row) if v is not None]
        if points:
            ax.plot(*zip(*points), marker="o", color=colours[group], label=group)
    _horizon_axis(ax)
    ax.set_ylabel("markout (bps, + = the market moved our way)")
    ax.legend(loc="best", fontsize=8)


def _grouped_waterfall(ax: Axes, waterfalls: dict[str, Waterfall]) -> None:
    ax.set_title("Implementation shortfall by group: mean parts (notional-weighted), delay -> total")
    groups = list(waterfalls)
    width = 0.8 / len(groups)
    colours = _colours(groups)
    labels = next(iter(waterfalls.values())).labels
    for j, group in enumerate(groups):
        w = waterfalls[group]
        xs = [i - 0.4 + width * (j + 0.5) for i in range(len(labels) + 1)]
        heights = [abs(float(v)) for v in w.values] + [abs(float(w.total))]
        bottoms = [float(b) for b in w.bottoms] + [min(0.0, float(w.total))]
        ax.bar(xs, heights, bottom=bottoms, width=width * 0.9, color=colours[group], edgecolor="black",
               linewidth=0.5, label=group)
        for x, value, b, h in zip(xs, [*w.values, w.total], bottoms, heights):
            ax.annotate(f"{float(value):+.2f}", (x, b + h), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(labels) + 1), [*labels, "total"])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylabel("bps of ordered x decision price (+ = cost)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="best", fontsize=8)


def render_report(chart: ReportChart, path: str | Path) -> Path:
    """The aggregate's chart as a PNG of REPORT_PX pixels: costs by group, markout curves, shortfall waterfalls."""
    fig = Figure(figsize=REPORT_SIZE_IN, dpi=DPI, layout="constrained")
    costs_ax, curves_ax, waterfall_ax = fig.subplots(3, 1)
    fig.suptitle(chart.title, fontsize=13)
    _panel(costs_ax, chart.costs, _costs, "Cost distribution", chart.missing.get("costs", ""))
    _panel(curves_ax, chart.markouts, _curves, "Markout curve by group", chart.missing.get("markouts", ""))
    _panel(waterfall_ax, chart.waterfalls or None, _grouped_waterfall, "Implementation shortfall by group",
           chart.missing.get("shortfall", ""))
    return _save(fig, path)


def _save(fig: Figure, path: str | Path) -> Path:
    target = Path(path)
    fig.savefig(target, format="png", dpi=DPI)  # never bbox_inches="tight": it would change the pixel size
    return target
