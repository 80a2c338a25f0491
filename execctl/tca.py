"""``execctl tca``: transaction cost analysis from the terminal (README, Operator tools: TCA and charts).

- ``execctl tca ORDER_ID [--chart FILE.png] [-o table|json|csv]``: one order's TCA (GET /orders/{id}/tca); the
  table shows every figure with its unit, the CSV one row per fill, the JSON the service's document.
- ``execctl tca report [--group-by algorithm,venue] [--since 1h] [--until now] [--chart FILE.png] [-o ...]``:
  TCA in aggregate (GET /analytics/tca), one row per group.

A group that takes both a subcommand (``report``) and an order id: ``TcaGroup`` sends a first argument that names
no subcommand to the hidden ``order`` command. ``--chart`` draws execctl/charts.py's series with
execctl/charts_png.py; the chart's path is announced on stderr, so stdout stays the document asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperCommand

from execctl import charts, common, output
from execctl.common import ExecctlGroup, OutputOpt, api, new_app
from execctl.output import Column, Format

ORDER_COMMAND = "order"


class TcaGroup(ExecctlGroup):
    """``tca report ...`` runs the subcommand; ``tca ORDER_ID ...`` runs the hidden ``order`` command."""

    def resolve_command(self, ctx: typer.Context, args: list[str]):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = [ORDER_COMMAND, *args]
        return super().resolve_command(ctx, args)

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        return ["ORDER_ID [--chart FILE.png] [-o FORMAT]  |  report [OPTIONS]"]


class _OrderCommand(TyperCommand):
    """The hidden ``order`` command, whose usage reads as it is typed: ``execctl tca ORDER_ID``."""

    def format_usage(self, ctx: typer.Context, formatter: Any) -> None:
        formatter.write_usage(ctx.parent.command_path if ctx.parent else "execctl tca",
                              "ORDER_ID [--chart FILE.png] [-o FORMAT]")


app = new_app("Transaction cost analysis: `tca ORDER_ID` (one order; --chart FILE.png draws it) or `tca report` "
              "(by algorithm, venue, ...).", cls=TcaGroup)

ChartOpt = Annotated[Optional[Path], typer.Option("--chart", help="also draw the chart to this PNG file",
                                                  dir_okay=False, writable=True)]


def _chart_path(path: Path | None) -> Path | None:
    if path is None:
        return None
    if path.suffix.lower() != ".png":
        raise typer.BadParameter(f"{path}: the chart is a PNG: name a .png file", param_hint="--chart")
    if not path.expanduser().resolve().parent.is_dir():
        raise typer.BadParameter(f"{path}: its directory does not exist", param_hint="--chart")
    return path.expanduser()


# ---- one order ------------------------------------------------------------------------------------------------
FILL_COLUMNS = (
    Column("time", "timestamp_ms", "ms"), Column("venue", "venue"), Column("quantity", "quantity", "num"),
    Column("price", "price", "num"), Column("liquidity", "liquidity"),
    Column("eff_spread_bps", "effective_spread_bps", "num"), Column("quoted_spread_bps", "quoted_spread_bps", "num"),
    Column("spread_capture", "spread_capture", "num"),
    *(Column(f"markout_{h:+d}s_bps", f"markouts_bps.{h}", "num") for h in charts.HORIZONS_S),
)


def _fills(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The record's fills, each with the venue it traded on (the service's ``market.fills``, same order)."""
    market = (doc.get("market") or {}).get("fills") or []
    fills = (doc.get("tca") or {}).get("fills") or []
    return [{**f, "venue": market[i]["venue"] if i < len(market) else None} for i, f in enumerate(fills)]


def _pair(a: Any, b: Any) -> str:
    return "" if a is None and b is None else f"{output.show(a)} / {output.show(b)}"


def _summary(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The figures of one order, each named with its unit (README "Execution analytics" defines them)."""
    tca, facts = doc.get("tca") or {}, doc.get("facts") or {}
    quote = str(doc.get("symbol") or "/").partition("/")[2] or "quote"
    sf = tca.get("shortfall") or {}
    rows: list[tuple[str, Any]] = [
        ("order", f"{doc.get('order_id')} {doc.get('side')} {doc.get('symbol')} on {doc.get('exchange')} "
                  f"({doc.get('algorithm') or 'direct'}, {doc.get('status')})"),
        ("quantity / filled", f"{tca.get('quantity')} / {tca.get('filled_quantity')}"),
        ("fill ratio", tca.get("fill_ratio")), (f"average price ({quote})", tca.get("average_price")),
        (f"notional ({quote})", tca.get("notional")), (f"decision mid ({quote})", facts.get("decision_mid")),
        (f"arrival mid ({quote})", facts.get("arrival_mid")),
        (f"arrival bid / ask ({quote})", _pair(facts.get("arrival_bid"), facts.get("arrival_ask"))),
        ("arrival cost (bps)", tca.get("arrival_cost_bps")),
        ("shortfall total (bps)", sf.get("total_bps")), (f"shortfall total ({quote})", sf.get("total")),
        *((f"  {part} (bps)", sf.get(f"{part}_bps")) for part in charts.SHORTFALL_PARTS),
        (f"interval VWAP ({quote})", tca.get("interval_vwap")),
        ("cost vs interval VWAP (bps)", tca.get("interval_vwap_cost_bps")),
        ("cost vs interval VWAP ex ours (bps)", tca.get("interval_vwap_ex_ours_cost_bps")),
        (f"TWAP of mid ({quote})", tca.get("twap_mid")), ("cost vs TWAP of mid (bps)", tca.get("twap_mid_cost_bps")),
        ("participation", tca.get("participation")), (f"fees ({quote})", tca.get("fees")),
        ("fees (bps)", tca.get("fees_bps")), ("maker share", tca.get("maker_share")),
        ("schedule deviation max / rms (of the order)",
         _pair(tca.get("schedule_deviation_max"), tca.get("schedule_deviation_rms"))),
        *((f"markout {h:+d} s (bps)", (tca.get("markouts_bps") or {}).get(str(h))) for h in charts.HORIZONS_S),
        ("router vs best venue (bps)", tca.get("router_vs_best_venue_bps")),
        ("router vs consolidated (bps)", tca.get("router_vs_consolidated_bps")),
        *((f"latency {k.replace('_', ' ')} (ms)", v) for k, v in (tca.get("latencies_ms") or {}).items()),
        ("window", " - ".join(output.show(t, "ms") for t in tca.get("window") or ())),
        ("flags", ", ".join(tca.get("flags") or ())),
    ]
    return [{"figure": k, "value": v} for k, v in rows]


def show_tca(doc: dict[str, Any], fmt: Format) -> None:
    fills = _fills(doc)
    if fmt is Format.table:
        output.out.print(output.table(_summary(doc), (Column("figure", "figure"), Column("value", "value")),
                                      f"TCA of order {doc.get('order_id')} (bps: + = it cost us; markouts: + = "
                                      "the market moved our way)"))
        output.out.print(output.table(fills, FILL_COLUMNS, f"{len(fills)} fills"))
    else:
        output.emit_rows(doc, fills, FILL_COLUMNS, fmt)


@app.command(ORDER_COMMAND, hidden=True, cls=_OrderCommand)
def order_tca(order_id: Annotated[str, typer.Argument(help="the order_id")], chart: ChartOpt = None,
              fmt: OutputOpt = Format.table) -> None:
    """One order's TCA (a parent's covers its children); --chart draws price vs mid, schedule, markouts and the
    shortfall waterfall."""
    path = _chart_path(chart)
    doc = api().get(f"/orders/{order_id}/tca")
    if path is not None:
        from execctl.charts_png import render_order  # matplotlib only when a chart is asked for

        order = api().get(f"/orders/{order_id}")
        children = list(api().pages("/orders", "orders", parent_id=order_id, limit=500)) \
            if order.get("algorithm") else []
        drawn = charts.order_chart(doc, order, children)
        render_order(drawn, path)
        output.err.print(f"chart written: {path}" + "".join(f"\n  {panel}: no data ({why})"
                                                            for panel, why in drawn.missing.items()),
                         highlight=False, markup=False)
    show_tca(doc, fmt)


# ---- the aggregate --------------------------------------------------------------------------------------------
def _stat(cost: str, what: str) -> str:
    return f"costs.{cost}.{what}"


COST_COLUMNS = (
    Column("orders", "count", "num"), Column("notional", "notional", "num"),
    Column("fill_ratio", "fill_ratio", "num"), Column("reject_rate", "reject_rate", "num"),
    Column("maker_share", "maker_share", "num"),
    Column("arrival_bps_mean", _stat("arrival_cost_bps", "mean"), "num"),
    Column("arrival_bps_median", _stat("arrival_cost_bps", "median"), "num"),
    Column("arrival_bps_p90", _stat("arrival_cost_bps", "p90"), "num"),
    Column("arrival_ci95_low", "arrival_cost_ci95.0", "num", read=lambda g: (g.get("arrival_cost_ci95") or [None])[0]),
    Column("arrival_ci95_high", "arrival_cost_ci95.1", "num",
           read=lambda g: (g.get("arrival_cost_ci95") or [None, None])[1]),
    Column("vs_vwap_bps_mean", _stat("interval_vwap_cost_bps", "mean"), "num"),
    Column("fees_bps_mean", _stat("fees_bps", "mean"), "num"),
    Column("markout_+1s_bps", "markout_curve.1", "num"), Column("markout_+60s_bps", "markout_curve.60", "num"),
)
_BY_HEADER = {c.header: c for c in COST_COLUMNS}
_CI95 = Column("arrival_ci95", "arrival_cost_ci95", read=lambda g: " .. ".join(
    str(v) for v in g.get("arrival_cost_ci95") or ()) or None)
# -o table splits COST_COLUMNS (every one of them in CSV) in two, so a terminal shows each whole
COST_TABLE = (*(_BY_HEADER[h] for h in ("orders", "notional", "fill_ratio", "arrival_bps_mean")), _CI95,
              *(_BY_HEADER[h] for h in ("vs_vwap_bps_mean", "fees_bps_mean", "markout_+60s_bps")))
SPREAD_TABLE = tuple(_BY_HEADER[h] for h in ("arrival_bps_median", "arrival_bps_p90", "reject_rate", "maker_share",
                                             "markout_+1s_bps"))
SHORTFALL_COLUMNS = (  # (CSV header, table header, where)
    ("shortfall_bps_mean", "mean_bps", _stat("shortfall_bps", "mean")),
    *((f"shortfall_{p}_bps_mean", f"{p}_bps", _stat(f"shortfall_{p}_bps", "mean")) for p in charts.SHORTFALL_PARTS),
    ("shortfall_bps_median", "median_bps", _stat("shortfall_bps", "median")),
    ("shortfall_bps_p90", "p90_bps", _stat("shortfall_bps", "p90")),
)


@app.command("report")
def report(
    group_by: Annotated[str, typer.Option(help="comma-separated: algorithm, venue, symbol, side, strategy_id "
                                               "(empty: one group of everything)")] = "algorithm,venue",
    since: Annotated[Optional[str], typer.Option(help="orders that ended at or after: epoch ms, 1h, 30m, 2d ago, "
                                                      "2026-12-04, 2026-12-04T10:00Z (default: until - 24 h)")] = None,
    until: Annotated[Optional[str], typer.Option(help="... and before (the same forms; default now)")] = None,
    seed: Annotated[int, typer.Option(min=0, max=2**32, help="the bootstrap's seed (same seed, same interval)")] = 0,
    chart: ChartOpt = None,
    fmt: OutputOpt = Format.table,
) -> None:
    """TCA in aggregate over the top-level orders that ended in [since, until), per group; --chart draws the cost
    distribution, the markout curves and the shortfall waterfalls."""
    now_ms = common.now_ms()
    path = _chart_path(chart)
    doc = api().get("/analytics/tca", group_by=group_by, since=common.moment(since, "--since", now_ms),
                    until=common.moment(until, "--until", now_ms), seed=seed)
    groups = doc.get("groups") or []
    keys = list(doc.get("group_by") or [])
    key_columns = tuple(Column(k, f"key.{k}") for k in keys) or (Column("group", "key", read=lambda g: "all"),)
    if path is not None:
        from execctl.charts_png import render_report

        drawn = charts.report_chart(doc)
        render_report(drawn, path)
        output.err.print(f"chart written: {path}" + "".join(f"\n  {panel}: no data ({why})"
                                                            for panel, why in drawn.missing.items()),
                         highlight=False, markup=False)
    title = (f"TCA of {doc.get('orders')} orders ended {output.show(doc.get('since'), 'ms')} - "
             f"{output.show(doc.get('until'), 'ms')} UTC, by {', '.join(keys) or 'nothing'} "
             "(bps notional-weighted; + = it cost us; markouts + = the market moved our way)")
    if fmt is Format.table:  # tables of one row per group, narrow enough to read: costs, spread, shortfall
        output.out.print(output.table(groups, (*key_columns, *COST_TABLE), title))
        output.out.print(output.table(groups, (*key_columns, *SPREAD_TABLE), "the arrival cost's spread, rates"))
        output.out.print(output.table(groups, (*key_columns, *(Column(h, path, "num") for _, h, path in
                                                               SHORTFALL_COLUMNS)),
                                      "implementation shortfall: notional-weighted mean of the total and of each "
                                      "part, median and p90 of the total; bps of ordered x decision price (+ = cost)"))
    else:
        output.emit_rows(doc, groups, (*key_columns, *COST_COLUMNS,
                                       *(Column(h, path, "num") for h, _, path in SHORTFALL_COLUMNS)), fmt)
